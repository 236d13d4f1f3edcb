"""The console on loopback for tests: a signed-in HTTP client, and Chromium through Playwright when present."""

from __future__ import annotations

import re
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import ClientSession, web

from console.sessions import SignInLinks
from shared.services import SERVICES

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "playwright (pip) is not installed"
    if not shutil.which(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


async def sign_in_link(app: web.Application) -> str:
    services = app[SERVICES]
    token = await SignInLinks(services.db).issue(now=services.clock().timestamp())
    return f"/console/signin?token={token}"


@asynccontextmanager
async def serving(app: web.Application, port: int) -> AsyncIterator[str]:
    """Run ``app`` on 127.0.0.1:``port`` (a real socket, for a real browser); yield its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def signed_in(client: Any, app: web.Application) -> str:
    """Sign ``client`` (an aiohttp test client) in with a fresh link; return the session's CSRF token."""
    link = await sign_in_link(app)
    page = await client.get(link)
    token = re.search(r'name="token" value="([^"]+)"', await page.text())
    assert token is not None
    response = await client.post("/console/signin", data={"token": token.group(1)}, allow_redirects=False)
    assert response.status == 303, await response.text()
    overview = await client.get("/console/alerts")
    found = CSRF_FIELD.search(await overview.text())
    assert found is not None
    return found.group(1)


__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "ClientSession", "browser_missing", "free_port", "serving", "signed_in"]
