"""The proxy judges, records and redirects to exactly the URL the browser reads from a wrapped link."""

from __future__ import annotations

import re
from typing import Any

import pytest

from safelinks.server import create_app
from shared.config import Settings
from shared.urllists.tenant_list import TablAction
from shared.verdicts import Verdict
from tests.conftest import FakeClock
from tests.proxy_fixtures import Proxy


@pytest.fixture
async def proxy(aiohttp_client: Any, settings: Settings) -> Proxy:
    return Proxy(await aiohttp_client(create_app(settings, role="proxy", clock=FakeClock())))


def _token(html: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', html)
    assert match, "the page offers no click-through"
    return match.group(1)


async def test_backslash_before_at_is_judged_as_the_host_the_browser_opens(proxy: Proxy) -> None:
    """'http://evil\\\\@good/' opens evil: evil's verdict applies, the warning shows, the record names evil."""
    await proxy.services.admin_verdicts.set("evil.example", Verdict.MALICIOUS)
    r = await proxy.click(proxy.link("http://evil.example\\@good.example/"))
    html = await r.text()
    assert r.status == 200 and "Location" not in r.headers and "classified as malicious" in html
    [c] = await proxy.stored()
    assert c.action_type.value == "ClickBlocked" and c.url == "http://evil.example/@good.example/"
    through = await proxy.click("/v1/url/continue", method="POST", data={"token": _token(html)})
    assert through.status == 303 and through.headers["Location"] == "http://evil.example/@good.example/"


@pytest.mark.parametrize(
    ("entry", "link"),
    [
        ("blocked.com", "http://blocked%2Ecom/"),
        ("blocked.com", "http://%62locked.com/x"),
        ("blocked.com", "http://BLOCKED.com./"),
        ("93.184.216.34", "http://0x5db8d822/"),
        ("93.184.216.34", "http://1572395042/"),
        ("93.184.216.34", "http://0135.0270.0330.042/"),
        ("93.184.216.34", "http://93.0xb8.55330/"),
        ("93.184.216.34", "http://[::ffff:93.184.216.34]/"),
        ("xn--strae-login-y6a.com", "http://straße-login.com/"),
    ],
)
async def test_tenant_block_holds_for_every_spelling_of_the_host(proxy: Proxy, entry: str, link: str) -> None:
    """A block applies to percent-encoded, mixed-case, IDN and every IPv4 spelling of its host."""
    await proxy.services.tenant_list.add(entry, TablAction.BLOCK)
    r = await proxy.click(proxy.link(link))
    assert r.status == 200 and "Location" not in r.headers and "blocked by your admin" in await r.text()
    [c] = await proxy.stored()
    assert c.action_type.value == "ClickBlockedByTenantPolicy"


async def test_sharp_s_host_is_judged_and_opened_as_itself(proxy: Proxy) -> None:
    """'straße' is its own host (UTS #46): the 'strasse' verdict does not apply, and the 302 goes to 'straße'."""
    await proxy.services.admin_verdicts.set("strasse-login.com", Verdict.MALICIOUS)
    r = await proxy.click(proxy.link("http://straße-login.com/"))
    assert r.status == 302 and r.headers["Location"] == "http://xn--strae-login-y6a.com/"
    await proxy.services.admin_verdicts.set("xn--strae-login-y6a.com", Verdict.MALICIOUS)
    proxy.services.verdicts.invalidate()
    r = await proxy.click(proxy.link("http://straße-login.com/"))
    assert r.status == 200 and "classified as malicious" in await r.text()


@pytest.mark.parametrize(
    ("link", "location"),
    [
        ("http://h.example/é", "http://h.example/%C3%A9"),
        ("http://http/é", "http://http/%C3%A9"),
        ("  http://h.example/x  ", "http://h.example/x"),
        ("http://bücher.de/ä?q=ö#ü", "http://xn--bcher-kva.de/%C3%A4?q=%C3%B6#%C3%BC"),
        ("https://example.com/a/../b/%2e%2E/c", "https://example.com/c"),
        ("HTTPS://Example.COM:443/x", "https://example.com/x"),
    ],
)
async def test_location_is_the_serialisation_of_the_judged_url(proxy: Proxy, link: str, location: str) -> None:
    """The 302 goes to the browser's serialisation of the judged URL, and the click records that URL."""
    r = await proxy.click(proxy.link(link))
    assert r.status == 302 and r.headers["Location"] == location
    [c] = await proxy.stored()
    assert c.url == location


@pytest.mark.parametrize(
    "link",
    [
        "http://google.com:500000/",
        "http://a\u200db.example/",
        "http://exa mple.com/",
        "http://%zz.example/",
        "http://1.2.3.256/",
        "javascript:alert(1)",
        "example.com/no-scheme",
    ],
)
async def test_a_target_the_browser_refuses_gets_a_4xx_page(proxy: Proxy, link: str) -> None:
    """A signed link to an address no browser opens is answered with a 400 page, never a redirect."""
    r = await proxy.click(proxy.link(link))
    assert r.status == 400 and "Location" not in r.headers
    assert "<title>" in await r.text()
