"""The verdict change log, scans and per-feed click counts on both backends: the ids, claims and counts callers use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.clicks import ActionType, Click, Workload
from shared.events import EventBus, VerdictChanged
from shared.store import open_database
from shared.store.clicks import ClickStore
from shared.store.health import ping
from shared.store.scans import ScanTable
from shared.verdicts import Verdict
from shared.verdicts.changes import ChangeLog, ExpressionChange

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


async def test_batch_change_ids_match_the_stored_rows(db_url: str) -> None:
    """Each change written in a batch is announced with the id of its own row, batch after batch."""
    db = await open_database(db_url)
    try:
        log = ChangeLog(db, None, batch=2)
        await log.record("feed:a", [ExpressionChange("first.example/", Verdict.UNKNOWN, Verdict.MALICIOUS)], at=T0)
        changes = [ExpressionChange(f"h{n}.example/", Verdict.UNKNOWN, Verdict.MALICIOUS, ("phishing", "malware"),
                                    f"listed {n}") for n in range(5)]
        written = await log.record("feed:b", changes, at=T0)
        rows = await db.fetchall("SELECT * FROM verdict_changes WHERE source = 'feed:b' ORDER BY id")
    finally:
        await db.close()
    assert written == 5
    assert [(r["expression"], r["old_verdict"], r["new_verdict"], r["threat_types"], r["reason"]) for r in rows] == [
        (f"h{n}.example/", "unknown", "malicious", "phishing,malware", f"listed {n}") for n in range(5)]
    assert {r["changed_at"] for r in rows} == {T0.timestamp()}


async def test_batch_changes_are_announced_with_their_ids(db_url: str) -> None:
    """The events a batch publishes carry the ids its rows got (the alert engine resumes from them)."""
    db = await open_database(db_url)
    bus = EventBus()
    seen: list[VerdictChanged] = []
    bus.subscribe(VerdictChanged, seen.append)
    try:
        await ChangeLog(db, bus, batch=3).record(
            "scan", [ExpressionChange(f"s{n}.example/", Verdict.PENDING, Verdict.CLEAN) for n in range(4)], at=T0)
        await bus.drain()
        rows = await db.fetchall("SELECT id, expression FROM verdict_changes ORDER BY id")
    finally:
        await db.close()
    assert sorted((e.change_id, e.expression) for e in seen) == [(int(r["id"]), r["expression"]) for r in rows]


async def test_a_scan_is_claimed_by_one_process(db_url: str) -> None:
    """The first claim of a URL wins; a repeat, or a restart from a stale submission time, is refused."""
    db = await open_database(db_url)
    try:
        scans = ScanTable(db)
        url = "https://evil.example/login"
        assert await scans.get(url) is None
        assert await scans.claim(url, None, 100.0)
        assert not await scans.claim(url, None, 101.0)
        await scans.set_scan_id(url, "scan-1")
        await scans.finish(url, "done", "malicious", "x" * 1500, "phishing", "https://scanner.example/r/1", 150.0)
        done = await scans.get(url)
        assert done is not None
        assert (done["status"], done["verdict"], done["scan_id"], done["threat_types"], done["finished_at"]) == (
            "done", "malicious", "scan-1", "phishing", 150.0)
        assert done["reason"] == "x" * 1000
        assert not await scans.claim(url, 99.0, 200.0)
        assert await scans.claim(url, 100.0, 200.0)
        again = await scans.get(url)
    finally:
        await db.close()
    assert again is not None
    assert (again["status"], again["verdict"], again["scan_id"], again["result_url"], again["reason"],
            again["threat_types"], again["submitted_at"], again["finished_at"]) == (
        "running", None, None, None, "", "", 200.0, None)


async def test_feed_hits_count_each_feeds_clicks_since(db_url: str) -> None:
    """Clicks are counted per feed that decided them, from the given time on; other sources are not feeds."""
    db = await open_database(db_url)
    clicks = ClickStore(db)
    clicks.start()
    try:
        for n, source in enumerate(["feed:urlhaus", "feed:urlhaus", "feed:openphish", "admin", None, "feed:urlhaus"]):
            await clicks.record(Click(report_id=f"r-{n}", timestamp=T0 + timedelta(minutes=n),
                                      url=f"https://site{n}.example/", action_type=ActionType.CLICK_BLOCKED,
                                      workload=Workload.TEAMS, verdict="malicious", verdict_source=source))
        hits = await clicks.feed_hits((T0 + timedelta(minutes=1)).timestamp())
        await ping(db)
    finally:
        await clicks.close()
        await db.close()
    assert hits == {"urlhaus": 2, "openphish": 1}
