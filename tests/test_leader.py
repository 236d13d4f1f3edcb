"""Leaders for singleton jobs: one holder at a time across connections and processes, handed over on exit or death."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from functools import partial

import pytest

from shared.store import open_database
from shared.store.leadership import LeaderError
from tests.waiting import eventually


async def test_one_leader_among_many(db_url: str) -> None:
    """Of five replicas asking at once, exactly one leads; the rest are told no at once."""
    dbs = [await open_database(db_url) for _ in range(5)]
    inside = asyncio.Event()
    release = asyncio.Event()
    outcomes: list[bool] = []

    async def replica(n: int) -> None:
        async with dbs[n].leader("feeds:urlhaus") as lead:
            outcomes.append(bool(lead))
            if lead:
                inside.set()
                await release.wait()

    first = asyncio.create_task(replica(0))
    await asyncio.wait_for(inside.wait(), 5)
    await asyncio.wait_for(asyncio.gather(*(replica(n) for n in range(1, 5))), 5)
    release.set()
    await first
    assert sorted(outcomes) == [False, False, False, False, True]
    for db in dbs:
        await db.close()


async def test_leadership_passes_on_after_exit(db_url: str) -> None:
    """Once the leader leaves its block, the next replica to ask leads (``db.leader`` on either backend)."""
    a, b = await open_database(db_url), await open_database(db_url)
    async with a.leader("alerts:lookback") as lead:
        assert lead
        async with b.leader("alerts:lookback") as other:
            assert not other
        async with b.leader("some-other-job") as unrelated:
            assert unrelated
    async with b.leader("alerts:lookback") as lead:
        assert lead
    await a.close()
    await b.close()


async def test_sqlite_lease_of_a_dead_holder_lapses(tmp_path: object) -> None:
    """A lease whose holder stopped renewing (a killed process) is taken over once it expires."""
    db = await open_database(f"sqlite:///{tmp_path}/db.sqlite")
    now = time.time()
    await db.execute("INSERT INTO leases (name, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?)",
                     ("feeds:x", "dead-process", now - 60, now + 60))
    async with db.leader("feeds:x") as lead:
        assert not lead
    # Its expiry passes (the row says so, rather than the test sleeping until it does).
    await db.execute("UPDATE leases SET expires_at = ? WHERE name = ?", (time.time() - 0.001, "feeds:x"))
    async with db.leader("feeds:x") as lead:
        assert lead
        row = await db.fetchone("SELECT holder FROM leases WHERE name = ?", ("feeds:x",))
        assert row is not None and row["holder"] == lead.holder
    assert await db.fetchone("SELECT holder FROM leases WHERE name = ?", ("feeds:x",)) is None
    await db.close()


async def test_sqlite_lease_is_renewed_while_held(tmp_path: object) -> None:
    """A held lease is pushed forward while its block runs, so a long job keeps it."""
    db = await open_database(f"sqlite:///{tmp_path}/db.sqlite")
    async with db.leader("long-job", ttl=1.5) as lead:
        first = await db.fetchone("SELECT expires_at FROM leases WHERE name = ?", ("long-job",))
        assert first is not None

        async def renewed() -> bool:
            row = await db.fetchone("SELECT expires_at FROM leases WHERE name = ?", ("long-job",))
            return row is not None and row["expires_at"] > first["expires_at"]

        await eventually(renewed, timeout=3.0)
        assert lead and not lead.lost.is_set()
    await db.close()


async def test_sqlite_lease_taken_by_another_is_lost(tmp_path: object) -> None:
    """A holder whose lease row was taken over (it stalled past expiry) sees ``lost`` and stops leading."""
    db = await open_database(f"sqlite:///{tmp_path}/db.sqlite")
    async with db.leader("job", ttl=1.5) as lead:
        await db.execute("UPDATE leases SET holder = 'usurper' WHERE name = ?", ("job",))
        await asyncio.wait_for(lead.lost.wait(), 3)
        assert not lead
    await db.close()


async def test_postgres_leader_notices_a_lost_connection(pg_url: str, postgres_base_url: str) -> None:
    """When the leader's connection dies the lock is free at once and the old holder sees ``lost``."""
    import asyncpg

    a, b = await open_database(pg_url), await open_database(pg_url)
    async with a.leader("feeds:openphish", ttl=1.5) as lead:
        assert lead
        assert lead.backend_pid is not None
        admin = await asyncpg.connect(postgres_base_url)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", lead.backend_pid)
        finally:
            await admin.close()
        await asyncio.wait_for(lead.lost.wait(), 5)
        assert not lead
        async with b.leader("feeds:openphish") as other:
            assert other
    await a.close()
    await b.close()


@pytest.mark.parametrize(("name", "ttl"), [("", 30.0), ("x" * 201, 30.0), ("ok", 0.5)])
async def test_bad_leader_requests_are_refused(tmp_path: object, name: str, ttl: float) -> None:
    """An empty or overlong name, or a ttl under a second, is a LeaderError."""
    db = await open_database(f"sqlite:///{tmp_path}/db.sqlite")
    with pytest.raises(LeaderError):
        async with db.leader(name, ttl=ttl):
            pass
    await db.close()


async def test_lead_forever_runs_one_loop_and_hands_over(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """Two replicas run a singleton loop: only one works at a time; when it stops, the standby takes over."""
    from shared.store.leader import lead_forever

    caplog.set_level(logging.DEBUG, logger="shared.store.leader")

    dbs = [await open_database(db_url) for _ in range(2)]
    working: list[str] = []
    beats: dict[str, int] = {"a": 0, "b": 0}

    def loop_of(who: str):  # type: ignore[no-untyped-def]
        async def work() -> None:
            working.append(who)
            try:
                assert len(working) == 1, f"two loops at once: {working}"
                while True:
                    beats[who] += 1
                    await asyncio.sleep(0.01)
            finally:
                working.remove(who)

        return work

    async def standing_by() -> bool:
        return sum("led elsewhere" in r.getMessage() for r in caplog.records) >= 3

    a = asyncio.create_task(lead_forever(dbs[0], "alerts:engine", loop_of("a"), retry=0.1))
    await eventually(partial(_true, lambda: beats["a"] > 0))
    b = asyncio.create_task(lead_forever(dbs[1], "alerts:engine", loop_of("b"), retry=0.1))
    await eventually(standing_by)  # b has asked three times, and been told no each time
    assert beats["a"] > 0 and beats["b"] == 0 and working == ["a"]
    a.cancel()
    with pytest.raises(asyncio.CancelledError):
        await a
    await eventually(partial(_true, lambda: beats["b"] > 0))
    assert beats["b"] > 0 and working == ["b"]
    b.cancel()
    with pytest.raises(asyncio.CancelledError):
        await b
    for db in dbs:
        await db.close()


async def test_sqlite_lease_of_a_killed_local_process_is_taken_at_once(tmp_path: object) -> None:
    """A lease held by a process on this host that no longer exists does not make the next one wait."""
    import socket
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    db = await open_database(f"sqlite:///{tmp_path}/db.sqlite")
    now = time.time()
    await db.execute("INSERT INTO leases (name, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?)",
                     ("alerts:engine", f"{socket.gethostname()}/{gone.stdout.strip()}/abc", now, now + 30))
    async with db.leader("alerts:engine") as lead:
        assert lead
    await db.execute("INSERT INTO leases (name, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?)",
                     ("alerts:engine", "elsewhere.example/1/abc", now, now + 30))
    async with db.leader("alerts:engine") as lead:
        assert not lead  # another host's holder may be alive: its lease is respected
    await db.close()


async def _true(check: Callable[[], bool]) -> bool:
    return check()
