"""The store: migrations, group-committed click log, admin verdicts and their change log."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.clicks import ActionType, Click, Workload
from shared.store import DuplicateKey, open_database
from shared.store.clicks import ClickFilter, ClickStore
from shared.store.migrations import available
from shared.verdicts import Verdict
from shared.verdicts.admin import AdminVerdicts

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def make_click(n: int, **kw: object) -> Click:
    values: dict[str, object] = dict(
        report_id=f"r-{n}", timestamp=T0 + timedelta(minutes=n), url=f"https://site{n % 3}.example/p/{n}",
        action_type=ActionType.CLICK_ALLOWED, workload=Workload.TEAMS, verdict="clean",
        account_upn=f"user{n % 2}@contoso.com",
    )
    values.update(kw)
    return Click(**values)  # type: ignore[arg-type]


async def test_migrations_apply_once(db_url: str) -> None:
    """Opening twice applies each numbered migration exactly once."""
    db = await open_database(db_url)
    await db.close()
    db = await open_database(db_url)
    rows = await db.fetchall("SELECT version FROM schema_migrations ORDER BY version")
    await db.close()
    assert [r["version"] for r in rows] == [v for v, _, _ in available()]


async def test_database_is_wal(tmp_path: Path) -> None:
    """The embedded store runs SQLite in WAL mode."""
    db = await open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    await db.close()
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _wal_progress(db_path: Path) -> tuple[int, int]:
    """(frames in the log, frames already copied into the database), read from the WAL index without
    touching it: mxFrame sits at byte 16 of the -shm file, nBackfill at byte 96, in native order."""
    shm = Path(f"{db_path}-shm").read_bytes()
    return int.from_bytes(shm[16:20], sys.byteorder), int.from_bytes(shm[96:100], sys.byteorder)


async def test_write_ahead_log_is_copied_back_off_the_commit_path(tmp_path: Path) -> None:
    """A thread of the store's own checkpoints the log; commits keep only a far safety-net limit."""
    def checkpointers() -> int:
        return sum(t.name == "sqlite-checkpoint" for t in threading.enumerate())

    before = checkpointers()
    path = tmp_path / "db.sqlite"
    db = await open_database(f"sqlite:///{path}")
    async with db.transaction() as tx:
        limit = await tx.fetchone("PRAGMA wal_autocheckpoint")
    store = ClickStore(db)
    store.start()
    await asyncio.gather(*(store.record(make_click(i)) for i in range(2000)))
    assert checkpointers() == before + 1
    frames, copied = _wal_progress(path)
    for _ in range(50):  # it runs a few times a second
        if frames > 0 and copied == frames:
            break
        await asyncio.sleep(0.1)
        frames, copied = _wal_progress(path)
    await store.close()
    await db.close()
    assert copied == frames > 0
    assert checkpointers() == before
    assert limit == {"wal_autocheckpoint": 10_000}


async def test_concurrent_clicks_are_all_committed(db_url: str) -> None:
    """Every record() that returned is in the database, even with hundreds in flight at once."""
    db = await open_database(db_url)
    store = ClickStore(db)
    store.start()
    await asyncio.gather(*(store.record(make_click(i)) for i in range(500)))
    assert await store.count() == 500
    other = await open_database(db_url)  # another connection sees them: committed
    assert (await other.fetchone("SELECT COUNT(*) AS n FROM clicks")) == {"n": 500}
    await other.close()
    await store.close()
    await db.close()


async def test_click_through_is_unique_per_report(db_url: str) -> None:
    """A second click-through row for one ReportId is refused; neighbours in the batch still commit."""
    db = await open_database(db_url)
    store = ClickStore(db)
    store.start()
    view = make_click(1, action_type=ActionType.CLICK_BLOCKED, verdict="malicious")
    await store.record(view)
    through = view.clicked_through(T0, None, None)
    results = await asyncio.gather(store.record(through), store.record(through), store.record(make_click(2)),
                                   return_exceptions=True)
    assert sum(isinstance(r, DuplicateKey) for r in results) == 1
    assert await store.count() == 3
    assert (await store.get_view("r-1")) == view
    await store.close()
    await db.close()


async def test_list_filters_and_round_trip(db_url: str) -> None:
    """Listing filters by time, user and URL, newest first, and returns clicks as written."""
    db = await open_database(db_url)
    store = ClickStore(db)
    store.start()
    clicks = [make_click(i, threat_types=("phish",), url_chain=("https://a.example/", "https://b.example/"))
              for i in range(10)]
    for c in clicks:
        await store.record(c)
    got = await store.list(ClickFilter(since=T0 + timedelta(minutes=5), user="USER1@contoso.com"))
    assert [c.report_id for c in got] == ["r-9", "r-7", "r-5"]
    assert got[0] == clicks[9]
    assert [c.report_id for c in await store.list(ClickFilter(url_contains="site2"))] == ["r-8", "r-5", "r-2"]
    assert await store.purge(T0 + timedelta(minutes=3)) == 3
    assert await store.count() == 7
    await store.close()
    await db.close()


async def test_admin_verdict_logs_changes(db_url: str) -> None:
    """Setting a verdict records a change only when the verdict differs, keyed by expression."""
    db = await open_database(db_url)
    admin = AdminVerdicts(db)
    await admin.load()
    first = await admin.set("https://evil.example/login", Verdict.MALICIOUS, threat_types=("phish",))
    assert first is not None and first.old_verdict == "unknown" and first.new_verdict == "malicious"
    assert await admin.set("https://evil.example/login", Verdict.MALICIOUS) is None
    back = await admin.set("https://evil.example/login", Verdict.CLEAN)
    assert back is not None and back.old_verdict == "malicious" and back.change_id > first.change_id
    rows = await db.fetchall("SELECT old_verdict, new_verdict FROM verdict_changes ORDER BY id")
    assert [(r["old_verdict"], r["new_verdict"]) for r in rows] == [("unknown", "malicious"), ("malicious", "clean")]
    await db.close()


async def test_admin_verdict_reaches_other_instances(db_url: str) -> None:
    """A verdict set through one connection is picked up by another's reload (replicas share the store)."""
    db1, db2 = await open_database(db_url), await open_database(db_url)
    a1, a2 = AdminVerdicts(db1), AdminVerdicts(db2)
    await a1.load()
    await a2.load()
    await a1.set("evil.example", Verdict.MALICIOUS)
    exprs = ["www.evil.example/x", "evil.example/x", "evil.example/"]
    assert await a2.check("http://www.evil.example/x", exprs) is None
    assert await a2.load() is True
    hit = await a2.check("http://www.evil.example/x", exprs)
    assert hit is not None and hit.verdict is Verdict.MALICIOUS
    await db1.close()
    await db2.close()


@pytest.mark.parametrize("bad", ["javascript:alert(1)", "", "http://"])
async def test_admin_verdict_refuses_non_urls(db_url: str, bad: str) -> None:
    """A verdict target that is no web address is refused."""
    from shared.urls import URLError

    db = await open_database(db_url)
    with pytest.raises(URLError):
        await AdminVerdicts(db).set(bad, Verdict.MALICIOUS)
    await db.close()


def test_report_ids_are_time_ordered_and_unique() -> None:
    """ReportIds sort by creation time (cheap unique-index inserts) and never repeat."""
    from shared.clicks import ReportIds

    ids = ReportIds()
    made = [ids.new(1_700_000_000 + n / 1000) for n in range(20_000)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(len(i) == 36 and i[14] == "7" for i in made[:10])  # UUIDv7 shape
    assert ReportIds().new(1.0) != ReportIds().new(1.0)  # separate processes don't collide


async def test_event_bus_runs_plain_handlers_inline_and_coroutines_as_tasks() -> None:
    """A plain handler (a wake-up) runs during publish; a coroutine handler runs later as a task."""
    from shared.events import EventBus, VerdictChanged

    bus = EventBus()
    seen: list[str] = []

    def wake(event: VerdictChanged) -> None:
        seen.append("inline")

    async def slow(event: VerdictChanged) -> None:
        seen.append("task")

    def broken(event: VerdictChanged) -> None:
        raise RuntimeError("a bad subscriber must not break publishing")

    bus.subscribe(VerdictChanged, broken)
    bus.subscribe(VerdictChanged, wake)
    bus.subscribe(VerdictChanged, slow)
    bus.publish(VerdictChanged(1, "e.example/", "unknown", "malicious", (), "admin", "", T0))
    assert seen == ["inline"]
    await bus.drain()
    assert seen == ["inline", "task"]


async def test_a_held_write_lock_never_freezes_the_event_loop(tmp_path: Path) -> None:
    """While another process holds SQLite's write lock, clicks wait for it off the loop, then commit."""
    path = tmp_path / "db.sqlite"
    db = await open_database(f"sqlite:///{path}")
    store = ClickStore(db)
    store.start()
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # e.g. a long feed import from the command line
    pending = asyncio.ensure_future(store.record(make_click(1)))
    ticks = 0
    for _ in range(20):  # the loop keeps turning while the write waits
        await asyncio.sleep(0.01)
        ticks += 1
    assert ticks == 20 and not pending.done()
    other.execute("COMMIT")
    await asyncio.wait_for(pending, 10)
    assert await store.count() == 1
    await store.close()
    await db.close()
