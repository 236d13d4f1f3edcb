"""The configured sources in the running service: precedence, isolation, the click path, health and metrics."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from safelinks.server import create_app
from shared.config import Settings
from shared.services import Services
from shared.store.feeds import FeedSpec
from shared.urllists.tenant_list import TablAction
from shared.verdicts import Verdict, VerdictResult
from tests.conftest import FakeClock
from tests.proxy_fixtures import Proxy

FEED = b"listed.example\nboth.example.com\nxn--pypal-4ve.com\n"


class StallingSource:
    """A tier-1 source that hangs forever (a feed server that stopped answering mid-lookup)."""

    name = "stalling"
    tier = 1
    enabled = True

    async def check(self, url: str, expressions: list[str]) -> VerdictResult | None:
        await asyncio.sleep(3600)
        return None

    async def update(self) -> None:
        return None


class BrokenSource(StallingSource):
    name = "broken"

    async def check(self, url: str, expressions: list[str]) -> VerdictResult | None:
        raise ConnectionError("feed database unreachable")


async def start(aiohttp_client: Any, settings: Settings, tmp_path: Path, **kw: Any) -> Proxy:
    proxy = Proxy(await aiohttp_client(create_app(settings, role="all", clock=FakeClock(), **kw)))
    feed = tmp_path / "local.txt"
    feed.write_bytes(FEED)
    services = proxy.services
    assert services.sources is not None
    await services.sources.updater.registry.add(FeedSpec("local", str(feed), "plain"), now=time.time())
    assert (await services.sources.updater.update("local")).status == "updated"
    return proxy


async def setup_case(s: Services, tenant: str | None, admin: str | None) -> None:
    if tenant:
        await s.tenant_list.add("both.example.com" if tenant == "block" else "both.example.com/", TablAction(tenant),
                                now=s.clock(), no_expiration=tenant == "block")
    if admin:
        await s.admin_verdicts.set("both.example.com", Verdict(admin), reason="reviewed")


@pytest.mark.parametrize(
    ("tenant", "admin", "url", "verdict", "source", "page_status"),
    [
        ("block", "clean", "https://both.example.com/", "malicious", "tenant-block", 200),
        ("allow", "malicious", "https://both.example.com/", "clean", "tenant-allow", 302),
        (None, "clean", "https://both.example.com/", "clean", "admin", 302),
        (None, "suspicious", "https://both.example.com/", "suspicious", "admin", 200),
        (None, None, "https://both.example.com/", "malicious", "feed:local", 200),
        (None, None, "https://listed.example/a", "malicious", "feed:local", 200),
        (None, None, "https://xn--pypal-4ve.com/", "malicious", "feed:local", 200),
        (None, None, "https://xn--pypal-4ve.net/", "suspicious", "heuristics", 200),
        (None, None, "https://plain.example/", "unknown", "none", 302),
    ],
)
async def test_precedence(aiohttp_client: Any, settings: Settings, tmp_path: Path, tenant: str | None,
                          admin: str | None, url: str, verdict: str, source: str, page_status: int) -> None:
    """Tenant allow/block → admin verdicts → feeds → heuristics, each click naming the deciding source."""
    proxy = await start(aiohttp_client, settings, tmp_path)
    await setup_case(proxy.services, tenant, admin)
    resp = await proxy.click(proxy.link(url))
    assert resp.status == page_status
    [click] = await proxy.stored()
    assert (click.verdict, click.verdict_source) == (verdict, source)


async def test_feed_listing_gives_the_warning_page_naming_the_feed(aiohttp_client: Any, settings: Settings,
                                                                  tmp_path: Path) -> None:
    """A URL a feed lists gets the warning page, which says so plainly; the click record names the feed."""
    proxy = await start(aiohttp_client, settings, tmp_path)
    resp = await proxy.click(proxy.link("https://www.listed.example/login"))
    html = await resp.text()
    assert resp.status == 200 and "A threat feed lists this site as dangerous." in html
    assert "feed local" not in html and "listed.example/:" not in html
    [click] = await proxy.stored()
    assert click.verdict_source == "feed:local"
    assert click.action_type.value == "ClickBlocked" and click.threat_types == ("malicious",)
    assert click.detection_methods == ("URL malicious reputation",)


async def test_heuristic_reasons_on_the_warning_page(aiohttp_client: Any, settings: Settings, tmp_path: Path) -> None:
    """A look-alike host is suspicious by heuristics, and the page says why."""
    proxy = await start(aiohttp_client, settings, tmp_path)
    resp = await proxy.click(proxy.link("https://bank.example@paypa1.com/login"))
    html = await resp.text()
    assert resp.status == 200 and "signs of phishing: " in html and "imitates paypal.com" in html


async def test_failing_sources_are_isolated(aiohttp_client: Any, settings: Settings, tmp_path: Path) -> None:
    """A stalling and a raising source never block a click; /healthz names them; the feed still decides."""
    proxy = await start(aiohttp_client, settings, tmp_path, providers=[StallingSource(), BrokenSource()])
    started = time.perf_counter()
    resp = await proxy.click(proxy.link("https://listed.example/"))
    assert resp.status == 200 and time.perf_counter() - started < 1.0
    [click] = await proxy.stored()
    assert click.verdict_source == "feed:local"
    health = await (await proxy.client.get("/healthz")).json()
    sources = health["verdict_sources"]
    assert sources["stalling"] == "failing" and sources["broken"] == "failing" and sources["feeds/local"] == "ok"
    report = proxy.services.verdicts.health_report()  # the reasons, for the CLI and the log
    assert "TimeoutError" in report["stalling"]["last_error"] and "unreachable" in report["broken"]["last_error"]
    assert report["feeds"]["detail"]["local"]["loaded"] is True
    metrics = await (await proxy.client.get("/metrics")).text()
    assert 'safelinks_verdict_errors_total{source="broken"} 1' in metrics
    assert 'safelinks_feed_hits_total{feed="local"} 1' in metrics
    assert "safelinks_verdict_cache_hit_ratio" in metrics and "safelinks_feed_age_seconds" in metrics


async def test_demo_feed_blocks_out_of_the_box(aiohttp_client: Any, settings: Settings) -> None:
    """With no feed configured, the shipped demo feed's test host gets the warning page."""
    proxy = Proxy(await aiohttp_client(create_app(settings, role="proxy", clock=FakeClock())))
    resp = await proxy.click(proxy.link("http://malicious.safelinks.invalid/"))
    assert resp.status == 200 and "A threat feed lists this site" in await resp.text()
    [click] = await proxy.stored()
    assert click.verdict_source == "feed:demo"


async def test_demo_feed_can_be_turned_off(aiohttp_client: Any, make_settings: Any) -> None:
    """SAFELINKS_FEED_DEMO=false leaves the test host unknown."""
    proxy = Proxy(await aiohttp_client(create_app(make_settings(feed_demo=False), role="proxy", clock=FakeClock())))
    resp = await proxy.click(proxy.link("http://malicious.safelinks.invalid/"))
    assert resp.status == 302
