"""Who may see and do what: the session cookie, the CSRF token, the role. Wrapped around each handler.

A wrapper rather than a middleware: any middleware makes aiohttp run its middleware machinery on
every request of the whole server, the click path included.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from console.render import see_other
from console.sessions import Session
from console.state import CONSOLE

SESSION_KEY: web.RequestKey[Session] = web.RequestKey("console_session", Session)
COOKIE = "safelinks_console"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def session_of(request: web.Request) -> Session | None:
    console = request.config_dict[CONSOLE]
    return await console.sessions.find(request.cookies.get(COOKIE), now=console.now())


def viewer(handler: Handler) -> Handler:
    """A page anyone signed in may see; without a session, the sign-in page (nothing else shown)."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        session = await session_of(request)
        if session is None:
            return see_other("/console/signin")
        request[SESSION_KEY] = session
        return await handler(request)

    return guarded


def _refuse(request: web.Request, status: int, title: str, message: str) -> web.Response:
    return request.config_dict[CONSOLE].templates.page(
        "refused.html", request, status=status, title=title, message=message)


def changer(*, admin: bool = True) -> Callable[[Handler], Handler]:
    """A form that changes something: a session, its CSRF token, and (``admin``) the right to change."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            session = await session_of(request)
            if session is None:
                return _refuse(request, 401, "Not signed in", "Sign in to the console first; nothing was changed.")
            request[SESSION_KEY] = session
            form = await request.post()
            sent = form.get("csrf")
            if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
                return _refuse(request, 403, "Form expired",
                               "This form did not come from your console session; nothing was changed. "
                               "Go back, reload the page and try again.")
            if admin and not session.may_change:
                return _refuse(request, 403, "Read-only access",
                               "Your role may look but not change anything; nothing was changed.")
            return await handler(request)

        return guarded

    return wrap
