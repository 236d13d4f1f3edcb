"""URL scans: pending while the scanner works, the result as a verdict change, and no scans of internal hosts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from safelinks.server import create_app
from shared.events import EventBus, VerdictChanged
from shared.metrics import Registry
from shared.store import Database, open_database
from shared.store.feeds import FeedSpec
from shared.verdicts import Verdict
from shared.verdicts.changes import ChangeLog
from shared.verdicts.engine import VerdictEngine
from shared.verdicts.heuristic_source import HeuristicsProvider
from shared.verdicts.scans import ScanProvider
from shared.verdicts.urlscan import UrlscanClient
from tests.conftest import FakeClock
from tests.feed_fixtures import feed_rig
from tests.proxy_fixtures import Proxy
from tests.scan_standin import ScanStandin, scan_standin
from tests.test_netguard import TableResolver

NAMES = {
    "evil.example.com": ["93.184.216.34"],
    "fine.example.com": ["93.184.216.34"],
    "loopback.example.com": ["127.0.0.1"],
    "intranet.example.com": ["10.20.30.40"],
    "v6loop.example.com": ["::1"],
    "mapped.example.com": ["::ffff:127.0.0.1"],
    "split.example.com": ["93.184.216.34", "192.168.1.10"],
    "metadata.example.com": ["169.254.169.254"],
}


@dataclass
class ScanRig:
    db: Database
    engine: VerdictEngine
    provider: ScanProvider
    standin: ScanStandin
    events: list[VerdictChanged]


@asynccontextmanager
async def scan_rig(tmp: Path, **standin: Any) -> AsyncIterator[ScanRig]:
    async with scan_standin(**standin) as server:
        db = await open_database(f"sqlite:///{tmp / 'scans.db'}")
        bus = EventBus()
        events: list[VerdictChanged] = []

        async def seen(event: VerdictChanged) -> None:
            events.append(event)

        bus.subscribe(VerdictChanged, seen)
        provider = ScanProvider(db, UrlscanClient(server.url, "secret-key"), ChangeLog(db, bus), FakeClock(),
                                poll_interval=0.02, timeout=2.0, resolver=TableResolver(NAMES))
        engine = VerdictEngine([provider, HeuristicsProvider()], metrics=Registry(), bus=bus, cache_ttl=30)
        provider.on_change = engine.invalidate
        try:
            yield ScanRig(db, engine, provider, server, events)
        finally:
            await provider.close()
            await bus.drain()
            await db.close()


async def test_pending_then_malicious_as_a_change(tmp_path: Path) -> None:
    """An unknown URL is pending while scanned; the malicious result arrives as pending→malicious."""
    async with scan_rig(tmp_path, polls=2) as rig:
        url = "http://evil.example.com/login"
        first = await rig.engine.check(url)
        assert (first.verdict, first.source) == (Verdict.PENDING, "scan")
        final = await rig.engine.wait_for(url, 3.0)
        assert (final.verdict, final.source, final.threat_types) == (Verdict.MALICIOUS, "scan", ("phishing",))
        assert "impersonates Microsoft" in final.reasons[0]
        assert rig.standin.submitted == [url] and rig.standin.keys == ["secret-key"]
        await asyncio.sleep(0.05)
        [event] = rig.events
        assert (event.expression, event.old_verdict, event.new_verdict, event.source) == (
            "evil.example.com/login", "pending", "malicious", "scan")
        assert event.change_id > 0


async def test_clean_scan_gives_no_opinion_and_is_logged(tmp_path: Path) -> None:
    """A clean scan leaves the URL to the heuristics (unknown here) and logs pending→clean."""
    async with scan_rig(tmp_path) as rig:
        url = "https://fine.example.com/"
        final = await rig.engine.wait_for(url, 3.0)
        assert final.verdict is Verdict.UNKNOWN
        row = await rig.db.fetchone("SELECT new_verdict FROM verdict_changes WHERE source = 'scan'")
        assert row is not None and row["new_verdict"] == "clean"


async def test_one_submission_for_many_clicks_and_processes(tmp_path: Path) -> None:
    """Concurrent clicks, and a second process on the same store, share one submission."""
    async with scan_rig(tmp_path, polls=3) as rig:
        url = "http://evil.example.com/a"
        other = ScanProvider(rig.db, UrlscanClient(rig.standin.url), ChangeLog(rig.db, None), FakeClock(),
                             poll_interval=0.02, resolver=TableResolver(NAMES))
        results = await asyncio.gather(*(rig.engine.check(url) for _ in range(5)),
                                       other.check(url, []), other.check(url, []))
        assert all(r is not None and r.verdict is Verdict.PENDING for r in results)
        final = await rig.engine.wait_for(url, 3.0)
        assert final.verdict is Verdict.MALICIOUS and rig.standin.submitted == [url]
        seen = await other.check(url, [])
        assert seen is not None and seen.verdict is Verdict.MALICIOUS
        await other.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://loopback.example.com/",
        "http://intranet.example.com/admin",
        "http://v6loop.example.com/",
        "http://mapped.example.com/",
        "http://split.example.com/",
        "http://metadata.example.com/latest/meta-data/",
        "http://127.0.0.1:8080/",
        "http://10.0.0.5/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:7f00:1]/",
    ],
)
async def test_internal_targets_are_never_submitted(tmp_path: Path, url: str) -> None:
    """Names resolving to (or literals of) loopback, private, link-local or mapped addresses are refused."""
    async with scan_rig(tmp_path) as rig:
        canon = (await rig.engine.check(url)).verdict
        assert canon is Verdict.PENDING
        final = await rig.engine.wait_for(url, 2.0)
        assert final.verdict is not Verdict.PENDING and final.source != "scan"
        assert rig.standin.submitted == []
        row = await rig.db.fetchone("SELECT status, reason FROM scans")
        assert row is not None and row["status"] == "refused" and "refused" in row["reason"]


async def test_scanner_down_ends_pending_without_a_verdict(tmp_path: Path) -> None:
    """A scanner answering 503 fails the scan: waiting clicks wake, and there is no scan verdict."""
    async with scan_rig(tmp_path, status=503) as rig:
        started = time.monotonic()
        final = await rig.engine.wait_for("http://evil.example.com/x", 3.0)
        assert final.source != "scan" and time.monotonic() - started < 1.5
        row = await rig.db.fetchone("SELECT status, reason FROM scans")
        assert row is not None and row["status"] == "failed" and "503" in row["reason"]


async def test_click_waits_for_scan_and_gets_warning(aiohttp_client: Any, make_settings: Any) -> None:
    """Through the proxy (ScanUrls on): the click waits for the scan and gets the warning naming it."""
    async with scan_standin(polls=1) as server:
        settings = make_settings(scan_api_url=server.url, scan_poll_interval=0.05, scan_allow_private=True)
        proxy = Proxy(await aiohttp_client(create_app(settings, role="proxy", clock=FakeClock())))
        resp = await proxy.click(proxy.link("http://127.0.0.1:9/evil/login"))
        assert resp.status == 200
        [click] = await proxy.stored()
        assert (click.verdict, click.verdict_source, click.action_type.value) == ("malicious", "scan", "ClickBlocked")


async def test_click_during_slow_scan_gets_scan_page(aiohttp_client: Any, make_settings: Any,
                                                     tmp_path: Path) -> None:
    """A scan slower than ScanWaitSeconds answers the scan-in-progress page (UrlScanInProgress)."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("policies:\n  - name: quick\n    scan_wait_seconds: 0.2\n"
                      "rules:\n  - name: all\n    policy: quick\n    priority: 0\n"
                      "    recipient_domain_is: [contoso.com]\n")
    async with scan_standin(polls=1000) as server:
        settings = make_settings(scan_api_url=server.url, scan_poll_interval=0.05, scan_allow_private=True,
                                 policy_file=policy)
        proxy = Proxy(await aiohttp_client(create_app(settings, role="proxy", clock=FakeClock())))
        resp = await proxy.click(proxy.link("http://127.0.0.1:9/evil/slow"))
        assert resp.status == 200
        [click] = await proxy.stored()
        assert click.action_type.value == "UrlScanInProgress" and click.verdict == "pending"


async def test_urls_a_feed_lists_are_never_sent_to_the_scanner(tmp_path: Path) -> None:
    """Feeds and scans share a tier, but a scan is submitted only for a URL no feed knows."""
    feed_file = tmp_path / "listed.txt"
    feed_file.write_text("evil.example.com/login\n")
    async with feed_rig(tmp_path) as feeds, scan_rig(tmp_path, polls=1) as rig:
        await feeds.registry.add(FeedSpec("f", str(feed_file), "plain", None, 3600.0), now=feeds.clock().timestamp())
        assert (await feeds.updater.update("f")).status == "updated"
        engine = VerdictEngine([feeds.provider, rig.provider, HeuristicsProvider()], metrics=Registry(),
                               cache_ttl=0)
        listed = await engine.check("http://evil.example.com/login")
        assert (listed.verdict, listed.source) == (Verdict.MALICIOUS, "feed:f")
        unknown = await engine.check("http://fine.example.com/page")
        assert (unknown.verdict, unknown.source) == (Verdict.PENDING, "scan")
        await engine.wait_for("http://fine.example.com/page", 3.0)  # the submission runs in the background
        assert rig.standin.submitted == ["http://fine.example.com/page"]
