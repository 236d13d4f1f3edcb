"""Signing in and out: the one-time link of ``safelinks console link``, and the session cookie."""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

from console.guard import COOKIE, changer, session_of
from console.oidc import OidcClient, OidcError
from console.render import not_found, see_other
from console.sessions import Role, Session
from console.state import CONSOLE, Console
from proxy.pages import SECURITY_HEADERS


async def signin_page(request: web.Request) -> web.StreamResponse:
    """The sign-in page. A link's token is only spent by the button (POST): a link preview cannot use it."""
    console = request.config_dict[CONSOLE]
    if await session_of(request) is not None and "token" not in request.query:
        return see_other("/console/")
    token = request.query.get("token", "")
    return console.templates.page("signin.html", request, token=token, oidc=console.oidc is not None,
                                  signed_out="out" in request.query, error=None)


async def signin_with_link(request: web.Request) -> web.StreamResponse:
    console = request.config_dict[CONSOLE]
    form = await request.post()
    token = form.get("token")
    role = await console.links.spend(token if isinstance(token, str) else "", now=console.now())
    if role is None:
        return console.templates.page(
            "signin.html", request, status=403, token="", oidc=console.oidc is not None, signed_out=False,
            error="This sign-in link is unknown, already used or expired (links last 10 minutes and work once). "
                  "Run “safelinks console link” for a new one.")
    return await start_session(console, "local-admin", "Local administrator", role, via="link")


async def start_session(console: Console, user_id: str, name: str, role: Role, *, via: str) -> web.StreamResponse:
    token, _ = await console.sessions.start(user_id, name, role, via=via, now=console.now())
    response = see_other("/console/")
    response.set_cookie(COOKIE, token, path="/console", httponly=True, samesite="Strict",
                        secure=console.secure_cookie, max_age=int(console.sessions.max))
    return response


@changer(admin=False)
async def signout(request: web.Request) -> web.StreamResponse:
    console = request.config_dict[CONSOLE]
    session = await session_of(request)
    if isinstance(session, Session):
        await console.sessions.end(session)
    response = see_other("/console/signin?out=1")
    response.del_cookie(COOKIE, path="/console")
    return response


OIDC_COOKIE = "safelinks_oidc"


async def oidc_start(request: web.Request) -> web.StreamResponse:
    console = request.config_dict[CONSOLE]
    if not isinstance(console.oidc, OidcClient):
        raise not_found()
    try:
        started = await console.oidc.start(now=console.now())
    except OidcError as exc:
        return _oidc_refused(request, console, str(exc))
    response = web.HTTPFound(started.url, headers=CIMultiDict(SECURITY_HEADERS))
    # Lax, not Strict: the provider sends the browser back with a cross-site top-level GET.
    response.set_cookie(OIDC_COOKIE, started.state, path="/console/oidc", httponly=True, samesite="Lax",
                        secure=console.secure_cookie, max_age=600)
    return response


async def oidc_callback(request: web.Request) -> web.StreamResponse:
    console = request.config_dict[CONSOLE]
    if not isinstance(console.oidc, OidcClient):
        raise not_found()
    q = request.query
    if q.get("error"):
        said = (q.get("error_description") or q["error"])[:300]
        return _oidc_refused(request, console, f"the identity provider said: {said}")
    try:
        who = await console.oidc.finish(code=q.get("code", ""), state=q.get("state", ""),
                                        browser_state=request.cookies.get(OIDC_COOKIE), now=console.now())
    except OidcError as exc:
        return _oidc_refused(request, console, str(exc))
    token, _ = await console.sessions.start(who.user_id, who.name, who.role, via="oidc", now=console.now(),
                                            upn=who.upn)
    # A page, not a redirect: after a cross-site arrival a redirect would not carry the Strict cookie.
    response = console.templates.page("signed_in.html", request)
    response.set_cookie(COOKIE, token, path="/console", httponly=True, samesite="Strict",
                        secure=console.secure_cookie, max_age=int(console.sessions.max))
    response.del_cookie(OIDC_COOKIE, path="/console/oidc")
    return response


def _oidc_refused(request: web.Request, console: Console, message: str) -> web.Response:
    return console.templates.page("signin.html", request, status=403, token="", oidc=True, signed_out=False,
                                  error=f"Sign-in failed: {message}")
