"""Console sign-in with OpenID Connect against a local provider stand-in (code flow, PKCE, nonce, roles)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web

from console.guard import COOKIE
from safelinks.server import create_app
from shared.config import Settings
from tests.console_rig import CHROMIUM, CHROMIUM_ARGS, browser_missing, free_port, serving
from tests.oidc_standin import CLIENT_ID, CLIENT_SECRET, OidcStandIn


@pytest.fixture
async def provider() -> AsyncIterator[OidcStandIn]:
    standin = OidcStandIn(free_port())
    runner = web.AppRunner(standin.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", standin.port).start()
    yield standin
    await runner.cleanup()


@pytest.fixture
def oidc_settings(make_settings: Callable[..., Settings], provider: OidcStandIn) -> Callable[..., Settings]:
    def make(**more: Any) -> Settings:
        return make_settings(console_oidc_metadata_url=provider.metadata_url, console_oidc_client_id=CLIENT_ID,
                             console_oidc_client_secret=CLIENT_SECRET, **more)

    return make


@pytest.fixture
async def client(aiohttp_client: Callable[..., Any], oidc_settings: Callable[..., Settings]) -> Any:
    return await aiohttp_client(create_app(oidc_settings(admins="aad-admin-by-id")))


async def sign_in(client: Any) -> Any:
    """Follow the flow by hand: start, the provider's redirect, the callback."""
    start = await client.get("/console/oidc/start", allow_redirects=False)
    assert start.status == 302
    authorize = urlsplit(start.headers["Location"])
    params = parse_qs(authorize.query)
    assert params["code_challenge_method"] == ["S256"] and params["nonce"] and params["state"]
    async with client.session.get(start.headers["Location"], allow_redirects=False) as at_provider:
        back = urlsplit(at_provider.headers["Location"])
    return await client.get(f"{back.path}?{back.query}", allow_redirects=False)


@pytest.mark.parametrize(("claims", "role"), [
    ({"oid": "aad-1", "sub": "s", "name": "Ada Admin", "roles": ["SafeLinks.Admin"]}, "admin"),
    ({"oid": "aad-2", "sub": "s", "name": "Rita Reader", "roles": ["SafeLinks.Reader"]}, "read-only"),
    ({"oid": "AAD-ADMIN-BY-ID", "sub": "s", "name": "Listed Admin"}, "admin"),  # SAFELINKS_ADMINS, any case
    ({"sub": "dex-user", "preferred_username": "kim", "roles": ["SafeLinks.Reader"]}, "read-only"),  # no oid
])
async def test_roles_come_from_the_app_role_or_the_admins_setting(client: Any, provider: OidcStandIn,
                                                                  claims: dict[str, Any], role: str) -> None:
    """An app role or an object id in SAFELINKS_ADMINS decides admin or read-only."""
    provider.claims = claims
    response = await sign_in(client)
    assert response.status == 200, await response.text()
    assert "Strict" in response.headers.getall("Set-Cookie")[0]
    page = await (await client.get("/console/alerts")).text()
    assert f"· {role}</span>" in page
    assert provider.token_requests[-1]["code_verifier"]  # PKCE: the verifier went with the code


async def test_no_role_no_session(client: Any, provider: OidcStandIn) -> None:
    """A user with neither role nor listed object id is refused, with the reason."""
    provider.claims = {"oid": "aad-9", "sub": "s", "name": "Nora Nobody", "roles": ["Other.Role"]}
    response = await sign_in(client)
    assert response.status == 403 and "Nora Nobody has no role in this console" in await response.text()
    assert COOKIE not in {c.key for c in client.session.cookie_jar}


@pytest.mark.parametrize(("tamper", "reason"), [
    ("nonce", "nonce"), ("audience", "Audience doesn&#39;t match"), ("issuer", "Invalid issuer"),
    ("expired", "expired"), ("foreign-key", "Signature verification failed"), ("alg-hs256", "accepted algorithm"),
])
async def test_a_bad_id_token_is_refused(client: Any, provider: OidcStandIn, tamper: str, reason: str) -> None:
    """An ID token with the wrong nonce, audience, issuer, age, key or algorithm signs nobody in."""
    provider.tamper = tamper
    response = await sign_in(client)
    assert response.status == 403
    assert reason in await response.text()
    assert (await client.get("/console/alerts", allow_redirects=False)).status == 303


async def test_a_callback_works_once_and_only_in_its_browser(client: Any, provider: OidcStandIn) -> None:
    """A replayed callback, or one arriving in a browser that did not start the sign-in, is refused."""
    start = await client.get("/console/oidc/start", allow_redirects=False)
    async with client.session.get(start.headers["Location"], allow_redirects=False) as at_provider:
        back = urlsplit(at_provider.headers["Location"])
    callback = f"{back.path}?{back.query}"
    client.session.cookie_jar.clear()  # another browser: no state cookie
    elsewhere = await client.get(callback, allow_redirects=False)
    assert elsewhere.status == 403 and "not started in this browser" in await elsewhere.text()
    first = await sign_in(client)
    assert first.status == 200
    client.session.cookie_jar.update_cookies({"safelinks_oidc": first.url.query["state"]})
    again = await client.get(first.url.path_qs, allow_redirects=False)
    assert again.status == 403 and "used or expired" in await again.text()


async def test_the_provider_unreachable_is_said(aiohttp_client: Callable[..., Any],
                                                make_settings: Callable[..., Settings]) -> None:
    """When the provider cannot be reached, the sign-in page says so; nothing else breaks."""
    dead = f"http://127.0.0.1:{free_port()}/.well-known/openid-configuration"
    client = await aiohttp_client(create_app(make_settings(console_oidc_metadata_url=dead,
                                                           console_oidc_client_id="c")))
    response = await client.get("/console/oidc/start", allow_redirects=False)
    assert response.status == 403 and "cannot be reached" in await response.text()


@pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))
async def test_sign_in_with_the_provider_in_a_browser(oidc_settings: Callable[..., Settings],
                                                      provider: OidcStandIn) -> None:
    """In Chromium: the sign-in button goes to the provider and back, and the console opens signed in."""
    from playwright.async_api import async_playwright, expect

    port = free_port()
    app = create_app(oidc_settings(public_url=f"http://127.0.0.1:{port}"))
    async with serving(app, port) as base, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            page.set_default_timeout(8000)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(base + "/console/alerts")
            await page.get_by_role("link", name="Sign in with your organisation account").click()
            await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
            await expect(page.get_by_text("Sam Analyst · admin")).to_be_visible()
            assert errors == []
        finally:
            await browser.close()
