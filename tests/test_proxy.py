"""The click-time proxy end to end over HTTP: every page, every ActionType, and what is stored."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

import pytest

from safelinks.server import create_app
from shared.config import Settings
from shared.urllists.tenant_list import TablAction
from shared.urls import parse
from shared.verdicts import Verdict
from tests.conftest import FakeClock
from tests.proxy_fixtures import Proxy

EVIL = "https://evil.example/login?next=%2Fhome"


@pytest.fixture
async def proxy(aiohttp_client: Any, settings: Settings) -> Proxy:
    return Proxy(await aiohttp_client(create_app(settings, role="proxy", clock=FakeClock())))


@pytest.fixture
def policy_file(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = tmp_path / "policies.yaml"
        path.write_text(text)
        return path

    return write


def token_of(html: str) -> str:
    match = re.search(r'name="token" value="([^"]+)"', html)
    assert match, "the page offers no click-through"
    return match.group(1)


async def test_clean_link_redirects_and_is_recorded(proxy: Proxy) -> None:
    """An unknown/clean URL answers 302 to the original and stores ClickAllowed with the Teams reference."""
    r = await proxy.click(proxy.link("https://example.com/a?b=1"))
    assert r.status == 302 and r.headers["Location"] == "https://example.com/a?b=1"
    [c] = await proxy.stored()
    assert c.action_type.value == "ClickAllowed" and c.account_upn == "alice@contoso.com"
    assert c.workload.value == "Teams" and c.conversation_id == "19:chat@thread.v2"
    assert c.message_id == "1700000000001" and c.sender == "mallory@evil.example" and not c.is_clicked_through


async def test_redirect_and_pages_carry_security_headers(proxy: Proxy) -> None:
    """302s and pages alike: no-store, no-referrer, a CSP without inline script, nosniff, no framing."""
    await proxy.services.admin_verdicts.set(EVIL, Verdict.MALICIOUS)
    token = token_of(await (await proxy.click(proxy.link(EVIL))).text())
    through = await proxy.click("/v1/url/continue", method="POST", data={"token": token})
    warning = await proxy.click(proxy.link(EVIL))
    for r in [
        await proxy.click(proxy.link("https://example.com/")), warning,
        through, await proxy.click(proxy.link("https://example.com/"), method="HEAD"),
        await proxy.click("/v1/back"), await proxy.click("/v1/url/continue"),
    ]:
        assert r.headers["Cache-Control"] == "no-store"
        # A page with "Continue anyway" keeps same-origin referrers (its form's Origin must not be null);
        # every other answer, the click-through's redirect included, sends none.
        assert r.headers["Referrer-Policy"] == ("same-origin" if r is warning else "no-referrer")
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        csp = r.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp and "script-src 'self'" in csp


async def test_malicious_url_shows_warning_with_click_through(proxy: Proxy) -> None:
    """Malicious → warning page (ClickBlocked) offering 'Continue anyway' under Built-in protection."""
    await proxy.services.admin_verdicts.set(EVIL, Verdict.MALICIOUS, threat_types=("Phish",))
    r = await proxy.click(proxy.link(EVIL))
    html = await r.text()
    assert r.status == 200 and "classified as malicious" in html and "Continue anyway (not recommended)" in html
    assert "Go back" in html and "evil.example" in html
    [c] = await proxy.stored()
    assert c.action_type.value == "ClickBlocked" and c.threat_types == ("Phish",) and c.verdict == "malicious"
    assert c.detection_methods == ("AdminVerdict",) and c.verdict_source == "admin"


async def test_host_verdict_covers_paths_and_subdomains(proxy: Proxy) -> None:
    """A verdict on a bare host covers its subdomains and every path."""
    await proxy.services.admin_verdicts.set("evil.example", Verdict.MALICIOUS)
    r = await proxy.click(proxy.link("http://www.evil.example/deep/path?q=1"))
    assert r.status == 200 and "malicious" in await r.text()


async def test_suspicious_url_shows_warning(proxy: Proxy) -> None:
    """Suspicious → the warning page too (ClickBlocked), worded as suspicious."""
    await proxy.services.admin_verdicts.set(EVIL, Verdict.SUSPICIOUS)
    r = await proxy.click(proxy.link(EVIL))
    assert "looks suspicious" in await r.text()
    assert (await proxy.stored())[0].action_type.value == "ClickBlocked"


async def test_click_through_is_a_single_use_post(proxy: Proxy) -> None:
    """POSTing the page's token redirects (303) once; the row shares ReportId, IsClickedThrough=true."""
    await proxy.services.admin_verdicts.set(EVIL, Verdict.MALICIOUS)
    token = token_of(await (await proxy.click(proxy.link(EVIL))).text())
    r = await proxy.click("/v1/url/continue", method="POST", data={"token": token})
    assert r.status == 303 and r.headers["Location"] == EVIL
    view, through = await proxy.stored()
    assert through.is_clicked_through and through.report_id == view.report_id
    assert through.action_type.value == "ClickBlocked"
    again = await proxy.click("/v1/url/continue", method="POST", data={"token": token})
    assert again.status == 409 and "Location" not in again.headers
    assert len(await proxy.stored()) == 2


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda t: t[:-2] + ("xx" if not t.endswith("xx") else "yy"), 403),  # forged MAC
        (lambda t: "r." + t.split(".", 1)[1], 403),  # token for another ReportId
        (lambda t: "garbage", 403),
    ],
)
async def test_forged_click_through_is_refused(proxy: Proxy, mutate: Callable[[str], str], status: int) -> None:
    """A token that was not issued for this view gets a 4xx and no redirect."""
    await proxy.services.admin_verdicts.set(EVIL, Verdict.MALICIOUS)
    token = token_of(await (await proxy.click(proxy.link(EVIL))).text())
    r = await proxy.click("/v1/url/continue", method="POST", data={"token": mutate(token)})
    assert r.status == status and "Location" not in r.headers
    assert len(await proxy.stored()) == 1


async def test_click_through_by_get_does_nothing(proxy: Proxy) -> None:
    """GET of the click-through (a scanner following a form) is refused and records nothing."""
    await proxy.services.admin_verdicts.set(EVIL, Verdict.MALICIOUS)
    token = token_of(await (await proxy.click(proxy.link(EVIL))).text())
    r = await proxy.click(f"/v1/url/continue?token={token}")
    assert r.status == 405 and "Location" not in r.headers
    assert len(await proxy.stored()) == 1


async def test_click_through_token_expires(proxy: Proxy) -> None:
    """A token older than its lifetime is refused with 410."""
    await proxy.services.admin_verdicts.set(EVIL, Verdict.MALICIOUS)
    token = token_of(await (await proxy.click(proxy.link(EVIL))).text())
    clock = proxy.services.clock
    assert isinstance(clock, FakeClock)
    clock.now += timedelta(seconds=proxy.services.settings.click_through_token_ttl + 1)
    r = await proxy.click("/v1/url/continue", method="POST", data={"token": token})
    assert r.status == 410 and "Location" not in r.headers


async def test_cross_site_click_through_is_refused(proxy: Proxy) -> None:
    """A POST from another origin (CSRF) is refused even with a valid token."""
    await proxy.services.admin_verdicts.set(EVIL, Verdict.MALICIOUS)
    token = token_of(await (await proxy.click(proxy.link(EVIL))).text())
    r = await proxy.click("/v1/url/continue", method="POST", data={"token": token},
                          headers={"Origin": "https://attacker.example"})
    assert r.status == 403 and "Location" not in r.headers


async def test_tenant_block_wins_and_offers_no_click_through(proxy: Proxy) -> None:
    """A Tenant Block entry → 'blocked by your admin' page, ClickBlockedByTenantPolicy, no continue."""
    await proxy.services.tenant_list.add("contoso-evil.com", TablAction.BLOCK)
    r = await proxy.click(proxy.link("https://www.contoso-evil.com/x"))
    html = await r.text()
    assert r.status == 200 and "blocked by your admin" in html and 'name="token"' not in html
    [c] = await proxy.stored()
    assert c.action_type.value == "ClickBlockedByTenantPolicy" and c.detection_methods == ("TenantBlocked",)


async def test_tenant_allow_overrides_a_malicious_verdict(proxy: Proxy) -> None:
    """A Tenant Allow entry skips every verdict: the link opens."""
    await proxy.services.admin_verdicts.set("evil.com", Verdict.MALICIOUS)
    await proxy.services.tenant_list.add("evil.com/login", TablAction.ALLOW)
    r = await proxy.click(proxy.link("https://evil.com/login"))
    assert r.status == 302
    assert (await proxy.stored())[0].verdict_source == "tenant-allow"


async def test_pending_shows_scan_page_after_waiting(aiohttp_client: Any, make_settings: Any,
                                                     policy_file: Callable[[str], Path]) -> None:
    """Pending → waits up to ScanUrls' timeout, then the scan-in-progress page (refreshing), UrlScanInProgress."""
    path = policy_file("presets:\n  standard:\n    all_recipients: true\n")
    proxy = Proxy(await aiohttp_client(create_app(make_settings(policy_file=path), role="proxy", clock=FakeClock())))
    await proxy.services.admin_verdicts.set(EVIL, Verdict.PENDING)
    loop = asyncio.get_running_loop()
    started = loop.time()
    r = await proxy.click(proxy.link(EVIL))
    html = await r.text()
    assert loop.time() - started >= 4.5  # Standard preset: ScanUrls with the default 5 s wait
    assert r.status == 200 and 'http-equiv="refresh"' in html and "still checking" in html
    assert 'name="token"' not in html  # Standard: no click-through
    assert (await proxy.stored())[0].action_type.value == "UrlScanInProgress"


async def test_pending_resolved_during_wait_gets_the_new_verdict(proxy: Proxy) -> None:
    """A scan that finishes while the click waits decides the click (here: malicious → warning)."""
    await proxy.services.admin_verdicts.set(EVIL, Verdict.PENDING)

    async def finish_scan() -> None:
        await asyncio.sleep(0.3)
        change = await proxy.services.admin_verdicts.set(EVIL, Verdict.MALICIOUS)
        assert change is not None
        proxy.services.bus.publish(change)

    task = asyncio.create_task(finish_scan())
    r = await proxy.click(proxy.link(EVIL))
    await task
    assert "classified as malicious" in await r.text()
    assert (await proxy.stored())[0].action_type.value == "ClickBlocked"


async def test_error_page_for_an_uncheckable_address(proxy: Proxy) -> None:
    """A signed link whose address has no canonical form → error page, UrlErrorPage, never a redirect."""
    r = await proxy.click(proxy.link("http://../"))
    assert r.status == 400 and "Location" not in r.headers and "be opened right now" in await r.text()
    assert (await proxy.stored())[0].action_type.value == "UrlErrorPage"


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 skype-url-preview@microsoft.com",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.12026; Pro)",
        "facebookexternalhit/1.1",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "",
    ],
)
async def test_previews_and_scanners_are_not_clicks(proxy: Proxy, ua: str) -> None:
    """Preview and scanner agents get a neutral page: no redirect, nothing recorded, even for bad URLs."""
    await proxy.services.admin_verdicts.set(EVIL, Verdict.MALICIOUS)
    for url in ("https://example.com/", EVIL):
        r = await proxy.click(proxy.link(url), ua=ua)
        assert r.status == 200 and "Location" not in r.headers and 'name="token"' not in await r.text()
    assert await proxy.stored() == []


async def test_head_is_not_a_click(proxy: Proxy) -> None:
    """HEAD never redirects and never counts."""
    r = await proxy.click(proxy.link("https://example.com/"), method="HEAD")
    assert r.status == 200 and "Location" not in r.headers
    assert await proxy.stored() == []


async def test_sec_purpose_prefetch_is_not_a_click(proxy: Proxy) -> None:
    """A browser prefetch (Sec-Purpose: prefetch) is not a click."""
    r = await proxy.click(proxy.link("https://example.com/"), headers={"Sec-Purpose": "prefetch"})
    assert r.status == 200 and await proxy.stored() == []


async def test_strict_policy_offers_no_click_through(aiohttp_client: Any, make_settings: Any,
                                                     policy_file: Callable[[str], Path]) -> None:
    """Under Strict (AllowClickThrough off) the warning page has no continue, and a token is refused."""
    path = policy_file("presets:\n  strict:\n    sent_to: [alice@contoso.com]\n")
    proxy = Proxy(await aiohttp_client(create_app(make_settings(policy_file=path), role="proxy", clock=FakeClock())))
    await proxy.services.admin_verdicts.set(EVIL, Verdict.MALICIOUS)
    html = await (await proxy.click(proxy.link(EVIL))).text()
    assert "Continue anyway" not in html and "does not allow" in html
    assert (await proxy.stored())[0].policy == "Strict preset"


async def test_custom_text_and_branding_on_pages(aiohttp_client: Any, make_settings: Any,
                                                 policy_file: Callable[[str], Path]) -> None:
    """The policy's custom notification text and organisation branding appear, escaped."""
    path = policy_file(
        "policies:\n  - name: Branded\n    AllowClickThrough: true\n"
        "    CustomNotificationText: 'Call <b>IT</b> on 1234'\n"
        "    branding: {name: Contoso, logo_url: 'https://contoso.example/logo.png'}\n"
        "rules:\n  - name: All\n    policy: Branded\n    priority: 0\n    recipient_domain_is: [contoso.com]\n")
    proxy = Proxy(await aiohttp_client(create_app(make_settings(policy_file=path), role="proxy", clock=FakeClock())))
    await proxy.services.admin_verdicts.set(EVIL, Verdict.MALICIOUS)
    html = await (await proxy.click(proxy.link(EVIL))).text()
    assert "Call &lt;b&gt;IT&lt;/b&gt; on 1234" in html and "Contoso" in html
    assert 'src="https://contoso.example/logo.png"' in html


async def test_track_clicks_off_records_no_identity(aiohttp_client: Any, make_settings: Any,
                                                     policy_file: Callable[[str], Path]) -> None:
    """TrackClicks off: the click is counted, without the user's name, IP or agent."""
    path = policy_file(
        "policies:\n  - name: Untracked\n    TrackClicks: false\n"
        "rules:\n  - name: All\n    policy: Untracked\n    priority: 0\n    recipient_domain_is: [contoso.com]\n")
    proxy = Proxy(await aiohttp_client(create_app(make_settings(policy_file=path), role="proxy", clock=FakeClock())))
    await proxy.click(proxy.link("https://example.com/"))
    [c] = await proxy.stored()
    assert c.account_upn is None and c.ip_address is None and c.user_agent is None


async def test_ip_is_anonymised_by_default(proxy: Proxy) -> None:
    """The stored IP keeps only the network part unless configured otherwise."""
    await proxy.click(proxy.link("https://example.com/"))
    assert (await proxy.stored())[0].ip_address == "127.0.0.0"


async def test_ip_kept_when_configured(aiohttp_client: Any, make_settings: Any) -> None:
    """SAFELINKS_ANONYMIZE_IP=false keeps the full address."""
    proxy = Proxy(await aiohttp_client(create_app(make_settings(anonymize_ip=False), role="proxy")))
    await proxy.click(proxy.link("https://example.com/"))
    assert (await proxy.stored())[0].ip_address == "127.0.0.1"


HOSTILE = 'https://evil.example/"><script>alert(1)</script><img src=x onerror=alert(2)>'


@pytest.mark.parametrize("kind", ["warning", "blocked", "scan", "error"])
async def test_hostile_url_is_escaped_on_every_page(aiohttp_client: Any, make_settings: Any, kind: str,
                                                    policy_file: Callable[[str], Path]) -> None:
    """A URL carrying markup is shown as text (the browser's serialisation, escaped) on every page, never as markup."""
    path = policy_file(
        "policies:\n  - name: Fast\n    scan_wait_seconds: 0\n    AllowClickThrough: true\n"
        "rules:\n  - name: All\n    policy: Fast\n    priority: 0\n    recipient_domain_is: [contoso.com]\n")
    proxy = Proxy(await aiohttp_client(create_app(make_settings(policy_file=path), role="proxy", clock=FakeClock())))
    url = HOSTILE
    if kind == "warning":
        await proxy.services.admin_verdicts.set(HOSTILE, Verdict.MALICIOUS)
    elif kind == "blocked":
        await proxy.services.tenant_list.add("evil.example.com", TablAction.BLOCK)
        url = HOSTILE.replace("evil.example", "evil.example.com")
    elif kind == "scan":
        await proxy.services.admin_verdicts.set(HOSTILE, Verdict.PENDING)
    else:
        url = 'http://../"><script>alert(1)</script>'
    html = await (await proxy.click(proxy.link(url))).text()
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert escape(parse(url).href) in html and "%3Cscript%3Ealert(1)%3C/script%3E" in html


async def test_metrics_and_health(proxy: Proxy) -> None:
    """/metrics counts clicks by action in Prometheus text; /healthz reports the database and sources."""
    await proxy.click(proxy.link("https://example.com/"))
    metrics = await (await proxy.client.get("/metrics")).text()
    assert 'safelinks_clicks_total{action="ClickAllowed",clicked_through="false"} 1' in metrics
    assert "safelinks_click_seconds_count 1" in metrics
    health = await (await proxy.client.get("/healthz")).json()
    assert health["status"] == "ok" and health["verdict_sources"]["admin"] == "ok"


@pytest.mark.parametrize(
    ("make_path", "status"),
    [
        (lambda p: "/v1/url", 400),  # nothing at all
        (lambda p: "/v1/url?url=https%3A%2F%2Fexample.com%2F", 400),  # no data, no sig
        (lambda p: p.link("https://example.com/") + "&url=https%3A%2F%2Fevil.example%2F", 400),  # duplicate
        (lambda p: p.link("https://example.com/").replace("url=", "url=%ff%fe", 1), 400),  # invalid UTF-8
        (lambda p: p.link("https://example.com/").replace("&sig=", "&&sig=", 1), 400),  # malformed query
        (lambda p: p.link("https://example.com/\r\nSet-Cookie: a=b"), 400),  # CR/LF, even when signed
        (lambda p: p.link("javascript:alert(document.cookie)"), 400),  # signed, but not a web address
        (lambda p: p.link("data:text/html,<script>alert(1)</script>"), 400),
        (lambda p: p.link("file:///etc/passwd"), 400),
        (lambda p: p.link("ftp://example.com/file"), 400),
        (lambda p: p.link("https://example.com/" + "a" * 9000), 414),  # over 8 KB, signed
        (lambda p: p.link("https://example.com/").replace("sig=", "sig=A", 1), 400),  # tampered
        (lambda p: p.link("https://example.com/x").replace("example.com%2Fx", "evil.example%2Fx"), 400),
    ],
)
async def test_bad_input_gets_an_error_page_and_the_server_keeps_serving(
    proxy: Proxy, make_path: Callable[[Proxy], str], status: int
) -> None:
    """Malformed, tampered, non-web or over-long links: a 4xx page, never a redirect, nothing recorded."""
    r = await proxy.click(make_path(proxy))
    assert r.status == status and "Location" not in r.headers
    assert r.headers["Content-Type"].startswith("text/html") and "Go back" in await r.text()
    assert r.headers["Cache-Control"] == "no-store" and "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert await proxy.stored() == []
    ok = await proxy.click(proxy.link("https://example.com/after"))
    assert ok.status == 302


async def test_unknown_key_id_is_refused(aiohttp_client: Any, make_settings: Any) -> None:
    """A link signed with a key the server does not have: 400, never a redirect."""
    from shared.signing import Keyring, LinkContext, LinkSigner

    proxy = Proxy(await aiohttp_client(create_app(make_settings(), role="proxy")))
    stranger = LinkSigner(Keyring.parse("zz:" + "99" * 32), proxy.services.settings.public_url)
    path = stranger.wrap("https://example.com/", LinkContext(recipient="a@contoso.com")).removeprefix(
        proxy.services.settings.public_url)
    r = await proxy.click(path)
    assert r.status == 400 and "Location" not in r.headers and "no longer has" in await r.text()


async def test_rejections_are_counted(proxy: Proxy) -> None:
    """Refused requests show in /metrics by status."""
    await proxy.click("/v1/url?url=x")
    metrics = await (await proxy.client.get("/metrics")).text()
    assert 'safelinks_rejected_requests_total{status="400"} 1' in metrics


async def test_percent_escapes_reach_the_browser_unchanged(proxy: Proxy) -> None:
    """The Location header keeps the signed address's escapes (%2F stays %2F); non-ASCII is escaped."""
    r = await proxy.click(proxy.link("https://example.com/a%2Fb?next=%2Fhome&q=caf\u00e9"))
    assert r.headers["Location"] == "https://example.com/a%2Fb?next=%2Fhome&q=caf%C3%A9"
    r = await proxy.click(proxy.link("https://b\u00fccher.example/x"))
    assert r.headers["Location"] == "https://xn--bcher-kva.example/x"


async def test_links_expire_when_a_maximum_age_is_set(aiohttp_client: Any, make_settings: Any) -> None:
    """With SAFELINKS_LINK_MAX_AGE_DAYS, an older link gets a 410 page and no redirect; a fresh one opens."""
    clock = FakeClock()
    proxy = Proxy(await aiohttp_client(create_app(make_settings(link_max_age_days=7), role="proxy", clock=clock)))
    fresh = proxy.link("https://example.com/")  # signed now (real time), clock set to the same instant
    clock.now = datetime.now(UTC)
    assert (await proxy.click(fresh)).status == 302
    clock.now += timedelta(days=8)
    r = await proxy.click(fresh)
    assert r.status == 410 and "Location" not in r.headers and "expired" in await r.text()
