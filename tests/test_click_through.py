"""Click-through requests must come from our own warning page; speculative loads are never clicks."""

from __future__ import annotations

import re
from typing import Any

import pytest

from proxy.agents import sends_fetch_metadata
from safelinks.server import create_app
from shared.config import Settings
from shared.verdicts import Verdict
from tests.conftest import BROWSER_UA, FakeClock
from tests.proxy_fixtures import Proxy

EVIL = "https://evil.example/login"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Safari/605.1.15")
OLD_SAFARI = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Version/15.6 Safari/605.1.15")
IOS_CHROME = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "CriOS/119.0.6045.109 Mobile/15E148 Safari/604.1")
OLD_CHROME = "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/75.0.3770.100 Safari/537.36"


@pytest.fixture
async def proxy(aiohttp_client: Any, settings: Settings) -> Proxy:
    return Proxy(await aiohttp_client(create_app(settings, role="proxy", clock=FakeClock())))


async def _token(proxy: Proxy) -> str:
    await proxy.services.admin_verdicts.set(EVIL, Verdict.MALICIOUS)
    page = await (await proxy.click(proxy.link(EVIL))).text()
    match = re.search(r'name="token" value="([^"]+)"', page)
    assert match
    return match.group(1)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"User-Agent": BROWSER_UA, "Origin": "null", "Sec-Fetch-Site": "same-origin"}, 403),
        ({"User-Agent": OLD_SAFARI, "Origin": "null"}, 403),
        ({"User-Agent": BROWSER_UA}, 403),
        ({"User-Agent": FIREFOX}, 403),
        ({"User-Agent": SAFARI, "Origin": "http://127.0.0.1:3978"}, 403),
        ({"User-Agent": BROWSER_UA, "Sec-Fetch-Site": "cross-site"}, 403),
        ({"User-Agent": BROWSER_UA, "Sec-Fetch-Site": "same-site"}, 403),
        ({"User-Agent": BROWSER_UA, "Sec-Fetch-Site": "same-origin"}, 303),
        ({"User-Agent": FIREFOX, "Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:3978"}, 303),
        ({"User-Agent": OLD_SAFARI, "Origin": "http://127.0.0.1:3978"}, 303),
        ({"User-Agent": OLD_CHROME}, 303),
        ({"User-Agent": IOS_CHROME}, 303),
    ],
)
async def test_click_through_must_come_from_our_page(proxy: Proxy, headers: dict[str, str], status: int) -> None:
    """Origin: null, a foreign Sec-Fetch-Site, or none from a browser that always sends one is refused."""
    token = await _token(proxy)
    r = await proxy.client.post("/v1/url/continue", data={"token": token}, headers=headers, allow_redirects=False)
    assert r.status == status
    assert ("Location" in r.headers) is (status == 303)
    through = [c for c in await proxy.stored() if c.is_clicked_through]
    assert len(through) == (1 if status == 303 else 0)


async def test_plain_http_elsewhere_expects_no_fetch_metadata(aiohttp_client: Any, make_settings: Any) -> None:
    """Browsers send no Sec-Fetch-Site to a non-loopback http origin, so its absence there is not held against them."""
    settings = make_settings(public_url="http://links.contoso.test:3978")
    proxy = Proxy(await aiohttp_client(create_app(settings, role="proxy", clock=FakeClock())))
    token = await _token(proxy)
    r = await proxy.client.post("/v1/url/continue", data={"token": token}, headers={"User-Agent": BROWSER_UA},
                                allow_redirects=False)
    assert r.status == 303


@pytest.mark.parametrize("purpose", ["prefetch", "prefetch;prerender", "prefetch; anonymous-client-ip", "PREFETCH",
                                     "preview"])
async def test_any_prefetch_purpose_is_not_a_click(proxy: Proxy, purpose: str) -> None:
    """Sec-Purpose (or Purpose) containing prefetch or preview is answered without counting a click."""
    for header in ("Sec-Purpose", "Purpose"):
        r = await proxy.click(proxy.link("https://example.com/"), headers={header: purpose})
        assert r.status == 200 and "Location" not in r.headers
    assert await proxy.stored() == []


@pytest.mark.parametrize(
    ("agent", "sends"),
    [(BROWSER_UA, True), (FIREFOX, True), (SAFARI, True), (OLD_SAFARI, False), (IOS_CHROME, False),
     (OLD_CHROME, False), ("Mozilla/5.0 (Windows NT 10.0; rv:89.0) Gecko/20100101 Firefox/89.0", False),
     ("curl/8.5.0", False), (None, False)],
)
def test_which_browsers_send_fetch_metadata(agent: str | None, sends: bool) -> None:
    """Chromium 76+, Firefox 90+ and Safari 16.4+ always send Fetch Metadata; others are not assumed to."""
    assert sends_fetch_metadata(agent) is sends


async def test_a_user_agent_of_raw_bytes_is_still_a_recorded_click(proxy: Proxy) -> None:
    """User-Agent bytes that are not UTF-8 are stored with replacement characters; the click is never lost."""
    import asyncio

    path = proxy.link("https://example.com/a")
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.client.port)
    writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nUser-Agent: Mozilla/5.0 \xff\xfe Chrome/126.0"
                 + b"\r\nConnection: close\r\n\r\n")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 302 ")
    [c] = await proxy.stored()
    assert c.user_agent == "Mozilla/5.0 \ufffd\ufffd Chrome/126.0"
