"""Console sign-in and safety over HTTP: one-time links, sessions, CSRF, roles, headers, audit."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from console.guard import COOKIE
from console.sessions import Role, Sessions
from safelinks.server import create_app
from shared.config import Settings
from tests.conftest import FakeClock
from tests.console_rig import CSRF_FIELD, sign_in_link, signed_in

PAGES = ["/console/", "/console/alerts", "/console/incidents", "/console/incidents/1", "/console/alerts/1",
         "/console/incidents/1/export", "/console/alerts/1/export"]
_TOKEN = re.compile(r'name="token" value="([^"]+)"')


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(aiohttp_client: Callable[..., Any], settings: Settings, clock: FakeClock) -> Any:
    return await aiohttp_client(create_app(settings, clock=clock))


async def _link_token(client: Any) -> str:
    page = await client.get(await sign_in_link(client.app))
    found = _TOKEN.search(await page.text())
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize("path", PAGES)
async def test_pages_without_a_session_go_to_sign_in(client: Any, path: str) -> None:
    """Without a session every console page answers only with the way to the sign-in page."""
    response = await client.get(path, allow_redirects=False)
    assert response.status in (303, 308)
    assert response.headers["Location"] in ("/console/signin", "/console/")
    assert await response.read() == b""


async def test_a_link_signs_in_once_with_a_locked_down_cookie(client: Any) -> None:
    """A sign-in link gives one HttpOnly, SameSite=Strict session cookie; replayed, it signs nobody in."""
    token = await _link_token(client)
    first = await client.post("/console/signin", data={"token": token}, allow_redirects=False)
    assert first.status == 303 and first.headers["Location"] == "/console/"
    cookie = first.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/console" in cookie and "Secure" not in cookie  # the public URL is http here
    client.session.cookie_jar.clear()
    again = await client.post("/console/signin", data={"token": token}, allow_redirects=False)
    assert again.status == 403 and "Set-Cookie" not in again.headers
    assert "already used or expired" in await again.text()
    assert (await client.get("/console/alerts", allow_redirects=False)).status == 303


@pytest.mark.parametrize(("minutes", "works"), [(9, True), (11, False)])
async def test_a_link_lasts_ten_minutes(client: Any, clock: FakeClock, minutes: int, works: bool) -> None:
    """A sign-in link works within 10 minutes of being made, not after."""
    token = await _link_token(client)
    clock.now += timedelta(minutes=minutes)
    response = await client.post("/console/signin", data={"token": token}, allow_redirects=False)
    assert (response.status == 303) is works


async def test_an_unknown_token_is_refused(client: Any) -> None:
    """A made-up token signs nobody in."""
    response = await client.post("/console/signin", data={"token": "x" * 43}, allow_redirects=False)
    assert response.status == 403 and "Set-Cookie" not in response.headers


@pytest.mark.parametrize(("idle", "after", "alive"), [
    (timedelta(minutes=29), timedelta(0), True),
    (timedelta(minutes=31), timedelta(0), False),
    (timedelta(minutes=20), timedelta(hours=12), False),  # absolute limit, though never idle for long
])
async def test_sessions_end_when_idle_or_old(client: Any, clock: FakeClock, idle: timedelta, after: timedelta,
                                             alive: bool) -> None:
    """A session ends after 30 idle minutes, and 12 hours after sign-in however busy it is."""
    await signed_in(client, client.app)
    start = clock.now
    while clock.now + idle < start + after:
        clock.now += idle
        assert (await client.get("/console/alerts", allow_redirects=False)).status == 200
    clock.now += idle
    response = await client.get("/console/alerts", allow_redirects=False)
    assert (response.status == 200) is alive


async def test_sign_out_ends_the_session(client: Any) -> None:
    """After signing out, the old cookie opens nothing."""
    csrf = await signed_in(client, client.app)
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/console/"))[COOKIE].value
    out = await client.post("/console/signout", data={"csrf": csrf}, allow_redirects=False)
    assert out.status == 303 and out.headers["Location"] == "/console/signin?out=1"
    client.session.cookie_jar.update_cookies({COOKIE: cookie})
    assert (await client.get("/console/alerts", allow_redirects=False)).status == 303


@pytest.mark.parametrize("csrf", [None, "", "wrong-token", "other-session"])
async def test_a_change_without_the_session_csrf_token_is_refused(client: Any, csrf: str | None) -> None:
    """A form posted without its own session's CSRF token changes nothing and says why."""
    own = await signed_in(client, client.app)
    if csrf == "other-session":  # a valid token, but another session's
        _, other = await Sessions(client.app[_services_key()].db, idle_seconds=60, max_seconds=60).start(
            "x", "X", Role.ADMIN, via="link", now=0)
        csrf = other.csrf
    entry = {"value": "evil.contoso-phish.com", "expiry": "30d", "action": "block"}
    response = await client.post("/console/lists", data=entry | ({"csrf": csrf} if csrf is not None else {}),
                                 allow_redirects=False)
    assert response.status == 403
    assert "did not come from your console session" in await response.text()
    db = client.app[_services_key()].db
    assert await db.fetchall("SELECT * FROM tabl_entries") == []
    assert await db.fetchall("SELECT * FROM audit_log") == []
    done = await client.post("/console/lists", data=entry | {"csrf": own}, allow_redirects=False)
    assert done.status == 303  # the same form with its token goes through
    assert [r["action"] for r in await db.fetchall("SELECT * FROM audit_log")] == ["tabl.block"]


async def test_a_change_without_a_session_is_refused(client: Any) -> None:
    """A form posted with no session at all is refused before anything is read from it."""
    response = await client.post("/console/signout", data={"csrf": "x"}, allow_redirects=False)
    assert response.status == 401


async def test_a_reader_may_look_but_not_change(client: Any, clock: FakeClock) -> None:
    """The read-only role sees pages but every change is refused."""
    services = client.app[_services_key()]
    sessions = Sessions(services.db, idle_seconds=1800, max_seconds=3600)
    token, session = await sessions.start("reader-1", "Rita Reader", Role.READER, via="oidc",
                                          now=clock.now.timestamp())
    client.session.cookie_jar.update_cookies({COOKIE: token})
    page = await client.get("/console/alerts")
    assert page.status == 200 and "read-only" in await page.text()
    response = await client.post("/console/incidents/1", data={"csrf": session.csrf, "do": "resolve"},
                                 allow_redirects=False)
    assert response.status == 403 and "may look but not change" in await response.text()


async def test_console_pages_carry_the_proxy_security_headers(client: Any) -> None:
    """Console pages keep the proxy's headers: CSP without inline script, no framing, no caching, no referrer."""
    await signed_in(client, client.app)
    for path in ("/console/alerts", "/console/signin?token=x"):
        response = await client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "<script>" not in await response.text()


async def test_the_cookie_is_secure_when_the_public_url_is_https(aiohttp_client: Callable[..., Any],
                                                                 make_settings: Callable[..., Settings]) -> None:
    """Behind an https public URL the session cookie is Secure."""
    settings = make_settings(public_url="https://safelinks.contoso.example")
    client = await aiohttp_client(create_app(settings, role="console"))
    token = await _link_token(client)
    response = await client.post("/console/signin", data={"token": token}, allow_redirects=False)
    assert "Secure" in response.headers["Set-Cookie"]


def _services_key() -> Any:
    from shared.services import SERVICES

    return SERVICES


__all__ = ["CSRF_FIELD"]


async def test_the_command_prints_a_working_one_time_link(client: Any, settings: Settings,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """`safelinks console link` prints a sign-in link to the public URL that signs in once."""
    import asyncio

    from tests.conftest import run_cli

    env = {"SAFELINKS_DATA_DIR": str(settings.data_dir), "SAFELINKS_PUBLIC_URL": settings.public_url,
           "SAFELINKS_SIGNING_KEYS": settings.signing_keys.get_secret_value(),
           "SAFELINKS_SIGNING_KEY_ID": settings.signing_key_id}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        code, out, _ = await asyncio.to_thread(run_cli, capsys, "console", "link")
    assert code == 0
    link = out.strip()
    assert link.startswith(f"{settings.public_url}/console/signin?token=")
    token = link.split("token=", 1)[1]
    first = await client.post("/console/signin", data={"token": token}, allow_redirects=False)
    assert first.status == 303
    second = await client.post("/console/signin", data={"token": token}, allow_redirects=False)
    assert second.status == 403
