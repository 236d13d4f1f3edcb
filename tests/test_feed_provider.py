"""Feeds as a verdict source: registry, leader lease, revalidation, last good copy, differences as changes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from shared.store.feeds import BadFeedSpec, FeedExists, FeedSpec, UnknownFeed, parse_every
from shared.urls import expressions
from shared.verdicts import Verdict
from tests.feed_fixtures import DATA, FeedRig, feed_rig, feed_server

V1 = b"evil.example\nhttp://phish.invalid/login/\nhttps://cdn.bad.test/x.js?v=2\n"
V2 = b"evil.example\nhttps://cdn.bad.test/x.js?v=2\nnew-threat.test\nsecond.test\n"


async def verdict(rig: FeedRig, url: str) -> tuple[str | None, tuple[str, ...]]:
    found = await rig.provider.check(url, expressions(url))
    return (found.source, found.reasons) if found else (None, ())


async def add(rig: FeedRig, name: str, source: str, fmt: str = "plain", column: str | None = None) -> None:
    await rig.registry.add(FeedSpec(name, source, fmt, column, 3600.0), now=rig.clock().timestamp())


@pytest.mark.parametrize(
    ("fmt", "file", "column", "listed", "threat"),
    [
        ("urlhaus", "urlhaus.csv", None, "https://cdn.evil.example/payload/loader.exe", "malware"),
        ("urlhaus", "urlhaus-online.txt", None, "http://dropper.malware.invalid/bin.sh", "malware"),
        ("openphish", "openphish.txt", None, "https://login-microsoft.phish.example/owa/auth.php", "phishing"),
        ("phishtank", "phishtank.json", None, "https://paypal.account-check.example/webapps/x", "phishing"),
        ("phishtank", "phishtank.csv", None, "http://m365-login.phish.test/common/oauth2", "phishing"),
        ("plain", "plain.txt", None, "https://www.evil.example/anything", "malicious"),
        ("csv", "custom.csv", "Indicator", "http://c2.evil.example/gate.php", "malicious"),
    ],
)
async def test_every_format_lists_its_urls(tmp_path: Path, fmt: str, file: str, column: str | None,
                                           listed: str, threat: str) -> None:
    """Each supported format, from a file path, indexes its entries and names feed, threat and entry."""
    async with feed_rig(tmp_path) as rig:
        await add(rig, "f", str(DATA / file), fmt, column)
        outcome = await rig.updater.update("f")
        assert outcome.status == "updated" and outcome.entries > 0
        found = await rig.provider.check(listed, expressions(listed))
        assert found is not None and found.verdict is Verdict.MALICIOUS
        assert found.source == "feed:f" and found.threat_types == (threat,)
        assert "listed by feed f" in found.reasons[0] and str(found.expression) in found.reasons[0]


async def test_unlisted_and_phishtank_unverified_are_not_hits(tmp_path: Path) -> None:
    """A URL no feed lists has no feed verdict; PhishTank's unverified submissions are not listed."""
    async with feed_rig(tmp_path) as rig:
        await add(rig, "pt", str(DATA / "phishtank.csv"), "phishtank")
        await rig.updater.update("pt")
        assert await verdict(rig, "https://example.com/") == (None, ())
        assert await verdict(rig, "http://unverified.phish.test/") == (None, ())


async def test_domain_entry_covers_subdomains_and_url_entry_only_itself(tmp_path: Path) -> None:
    """A domain entry covers its subdomains and paths; a URL entry with a query only that URL."""
    async with feed_rig(tmp_path) as rig:
        await add(rig, "p", str(DATA / "plain.txt"))
        await rig.updater.update("p")
        assert (await verdict(rig, "http://a.b.evil.example/x/y?z=1"))[0] == "feed:p"
        assert (await verdict(rig, "https://cdn.evil.example/x.js?v=2"))[0] == "feed:p"
        assert (await verdict(rig, "http://phish.invalid/login/step2"))[0] == "feed:p"
        assert (await verdict(rig, "http://phish.invalid/other"))[0] is None


async def test_revalidation_uses_etag_and_304_keeps_index(tmp_path: Path) -> None:
    """The second fetch sends If-None-Match; a 304 keeps the index and counts as a success."""
    async with feed_server(V1) as server, feed_rig(tmp_path) as rig:
        await add(rig, "remote", server.url)
        assert (await rig.updater.update("remote")).status == "updated"
        rig.clock.now += timedelta(hours=2)
        outcome = await rig.updater.update("remote")
        assert outcome.status == "not-modified"
        assert server.requests[-1].get("If-None-Match") == server.etag
        record = await rig.registry.require("remote")
        assert record.last_success_at == rig.clock().timestamp() and record.last_error is None
        assert (await verdict(rig, "http://evil.example/"))[0] == "feed:remote"


@pytest.mark.parametrize(
    "broken",
    [
        b"<!doctype html><html><body>502 Bad Gateway</body></html>",
        b"",
        (DATA / "urlhaus-truncated.csv").read_bytes(),
        b"not a url\n" * 10 + b"evil.example\n",
    ],
    ids=["error-page", "empty", "truncated", "mostly-bad"],
)
async def test_broken_download_never_replaces_good_copy(tmp_path: Path, broken: bytes) -> None:
    """A malformed, truncated or empty body is an error: the last good index and copy stay."""
    async with feed_server(V1) as server, feed_rig(tmp_path) as rig:
        fmt = "urlhaus" if broken.startswith(b"#") else "plain"
        if fmt == "urlhaus":
            server.body = (DATA / "urlhaus.csv").read_bytes()
        await add(rig, "remote", server.url, fmt)
        await rig.updater.update("remote")
        good = await rig.registry.require("remote")
        server.body = broken
        outcome = await rig.updater.update("remote", force=True)
        assert outcome.status == "failed" and outcome.error
        record = await rig.registry.require("remote")
        assert record.sha256 == good.sha256 and record.version == good.version and record.last_error
        cached = rig.updater.cache.load("remote")
        assert cached is not None and cached.meta.sha256 == good.sha256
        assert len(rig.provider.loaded("remote").index) == good.entries  # type: ignore[union-attr]


async def test_http_error_is_recorded_and_shown_in_health(tmp_path: Path) -> None:
    """An HTTP failure is the feed's last error, in health detail; the feed stays loaded."""
    async with feed_server(V1) as server, feed_rig(tmp_path) as rig:
        await add(rig, "remote", server.url)
        await rig.updater.update("remote")
        server.status = 503
        assert (await rig.updater.update("remote", force=True)).status == "failed"
        await rig.updater.sync(force=True)
        detail = rig.provider.health_detail()["remote"]
        assert isinstance(detail, dict)
        assert detail["ok"] is False and "503" in str(detail["last_error"]) and detail["loaded"] is True


async def test_bad_lines_are_counted_not_fatal(tmp_path: Path) -> None:
    """A few bad lines are counted in the registry and the outcome; the rest is indexed."""
    async with feed_server(V1 + b"not a url at all\n") as server, feed_rig(tmp_path) as rig:
        await add(rig, "remote", server.url)
        outcome = await rig.updater.update("remote")
        assert outcome.status == "updated" and outcome.bad_lines == 1 and outcome.bad_examples
        assert (await rig.registry.require("remote")).bad_lines == 1


async def test_update_logs_only_the_difference(tmp_path: Path) -> None:
    """First import logs every entry unknown→malicious; the next logs only what came and went."""
    async with feed_server(V1) as server, feed_rig(tmp_path) as rig:
        await add(rig, "remote", server.url)
        first = await rig.updater.update("remote")
        assert (first.added, first.removed) == (3, 0)
        server.body = V2
        second = await rig.updater.update("remote")
        assert (second.added, second.removed) == (2, 1)
        rows = await rig.changes()
        assert rows[3:] == sorted(rows[3:], key=lambda r: r[1] != "unknown")
        assert sorted(rows[3:]) == sorted([
            ("new-threat.test/", "unknown", "malicious", "feed:remote"),
            ("second.test/", "unknown", "malicious", "feed:remote"),
            ("phish.invalid/login/", "malicious", "clean", "feed:remote"),
        ])
        await rig.bus.drain()
        assert len(rig.events) == 6 and all(e.change_id > 0 for e in rig.events)
        assert {e.change_id for e in rig.events} == set(range(1, 7))
        assert (await verdict(rig, "http://phish.invalid/login/"))[0] is None
        assert (await verdict(rig, "http://x.second.test/"))[0] == "feed:remote"


async def test_unchanged_body_logs_nothing(tmp_path: Path) -> None:
    """A body fetched again with the same content (no validators) logs no change."""
    async with feed_server(V1) as server, feed_rig(tmp_path) as rig:
        await add(rig, "remote", server.url)
        await rig.updater.update("remote")
        outcome = await rig.updater.update("remote", force=True)
        assert outcome.status == "updated" and (outcome.added, outcome.removed) == (0, 0)
        assert len(await rig.changes()) == 3


async def test_remove_and_disable_log_entries_as_clean(tmp_path: Path) -> None:
    """Removing or disabling a feed logs each of its entries malicious→clean; re-enabling re-imports all."""
    async with feed_server(V1) as server, feed_rig(tmp_path) as rig:
        await add(rig, "remote", server.url)
        await rig.updater.update("remote")
        assert await rig.updater.retire("remote", remove=False) == 3
        assert rig.provider.names() == []
        rows = await rig.changes()
        assert [r[1:] for r in rows[3:]] == [("malicious", "clean", "feed:remote")] * 3
        await rig.registry.set_enabled("remote", True)
        assert (await rig.updater.update("remote")).added == 3
        assert await rig.updater.retire("remote", remove=True) == 3
        assert await rig.registry.get("remote") is None and len(await rig.changes()) == 12


async def test_other_process_follows_through_the_version(tmp_path: Path) -> None:
    """Another process on the same store loads the update from the shared last good copy."""
    async with feed_server(V1) as server, feed_rig(tmp_path) as rig:
        provider, follower = rig.updater_for(tmp_path / "cache")
        await add(rig, "remote", server.url)
        assert await follower.sync() is False
        await rig.updater.update("remote")
        fetched = len(server.requests)
        assert await follower.sync() is True
        assert len(server.requests) == fetched  # loaded from disk, not downloaded again
        assert (await provider.check("http://evil.example/", expressions("http://evil.example/"))) is not None
        await rig.registry.remove("remote")
        assert await follower.sync() is True and provider.names() == []


async def test_other_host_without_the_copy_fetches_it(tmp_path: Path) -> None:
    """A process on another host (its own disk) downloads the feed itself and logs nothing."""
    async with feed_server(V1) as server, feed_rig(tmp_path) as rig:
        provider, follower = rig.updater_for(tmp_path / "elsewhere")
        await add(rig, "remote", server.url)
        await rig.updater.update("remote")
        assert await follower.sync() is True
        assert provider.loaded("remote") is not None and len(await rig.changes()) == 3


async def test_one_leader_per_feed(tmp_path: Path) -> None:
    """A feed's lease is held by one process; another gets 'busy' until it is released or expires."""
    async with feed_rig(tmp_path) as rig:
        await add(rig, "p", str(DATA / "plain.txt"))
        now = rig.clock().timestamp()
        assert await rig.registry.claim("p", "host-a", now=now, lease=60)
        assert not await rig.registry.claim("p", "host-b", now=now + 30, lease=60)
        _, other = rig.updater_for(tmp_path / "cache")
        assert (await other.update("p")).status == "busy"
        assert await rig.registry.claim("p", "host-b", now=now + 61, lease=60)
        await rig.registry.release("p", "host-b")
        assert (await other.update("p")).status == "updated"


async def test_build_in_a_child_process(tmp_path: Path) -> None:
    """The forked build gives an index that answers in this process (same string hashes)."""
    async with feed_server(V1) as server, feed_rig(tmp_path, use_process=True) as rig:
        await add(rig, "remote", server.url)
        assert (await rig.updater.update("remote")).status == "updated"
        assert (await verdict(rig, "https://sub.evil.example/"))[0] == "feed:remote"


async def test_demo_feed_until_a_feed_is_configured(tmp_path: Path) -> None:
    """With no feed configured the demo feed blocks its reserved test hosts; adding a feed drops it."""
    async with feed_rig(tmp_path, demo=True) as rig:
        await rig.updater.sync()
        source, reasons = await verdict(rig, "http://malicious.safelinks.invalid/anything")
        assert source == "feed:demo" and reasons
        assert (await verdict(rig, "http://test.safelinks.invalid/phish.html"))[0] == "feed:demo"
        assert (await verdict(rig, "http://test.safelinks.invalid/malware/a.exe"))[0] == "feed:demo"
        assert (await verdict(rig, "http://test.safelinks.invalid/fine"))[0] is None
        await add(rig, "p", str(DATA / "plain.txt"))
        await rig.updater.update("p")
        await rig.updater.sync()
        assert rig.provider.names() == ["p"]


async def test_due_feeds_follow_their_interval(tmp_path: Path) -> None:
    """update_due fetches a feed only once its interval has passed."""
    async with feed_server(V1) as server, feed_rig(tmp_path) as rig:
        await add(rig, "remote", server.url)
        assert [o.status for o in await rig.updater.update_due()] == ["updated"]
        rig.clock.now += timedelta(minutes=30)
        assert await rig.updater.update_due() == []
        rig.clock.now += timedelta(minutes=31)
        assert [o.status for o in await rig.updater.update_due()] == ["not-modified"]


async def test_metrics_show_age_lag_and_hits(tmp_path: Path) -> None:
    """Feed age, update lag, entries and hits are exported."""
    async with feed_rig(tmp_path) as rig:
        await add(rig, "p", str(DATA / "plain.txt"))
        await rig.updater.update("p")
        await rig.updater.sync(force=True)
        await verdict(rig, "http://evil.example/")
        rig.clock.now += timedelta(hours=3)
        text = rig.metrics.render()
        assert 'safelinks_feed_age_seconds{feed="p"} 10800' in text
        assert 'safelinks_feed_update_lag_seconds{feed="p"} 7200' in text
        assert 'safelinks_feed_entries{feed="p"} 5' in text
        assert 'safelinks_feed_hits_total{feed="p"} 1' in text


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        (FeedSpec("bad name", "x.txt", "plain"), BadFeedSpec),
        (FeedSpec("f", "x.txt", "rss"), BadFeedSpec),
        (FeedSpec("f", "x.csv", "csv"), BadFeedSpec),
        (FeedSpec("f", "x.txt", "plain", every=10), BadFeedSpec),
        (FeedSpec("f", "ftp://host/x.txt", "plain"), BadFeedSpec),
    ],
)
async def test_bad_specs_are_refused(tmp_path: Path, spec: FeedSpec, error: type[Exception]) -> None:
    """A feed that cannot work is refused when added, naming the problem."""
    async with feed_rig(tmp_path) as rig:
        with pytest.raises(error):
            await rig.registry.add(spec, now=0.0)


async def test_duplicate_and_unknown_names(tmp_path: Path) -> None:
    """Adding a name twice and removing or updating an unknown name are clear errors."""
    async with feed_rig(tmp_path) as rig:
        await add(rig, "p", str(DATA / "plain.txt"))
        with pytest.raises(FeedExists):
            await add(rig, "p", str(DATA / "plain.txt"))
        with pytest.raises(UnknownFeed):
            await rig.registry.remove("nope")
        with pytest.raises(UnknownFeed):
            await rig.updater.update("nope")


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172800)])
def test_intervals(text: str, seconds: float) -> None:
    """Intervals read as seconds, minutes, hours or days."""
    assert parse_every(text) == seconds
