"""Signing in and out: the one-time link of ``safelinks console link``, and the session cookie."""

from __future__ import annotations

from aiohttp import web

from console.guard import COOKIE, changer, session_of
from console.render import see_other
from console.sessions import Role, Session
from console.state import CONSOLE, Console


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
