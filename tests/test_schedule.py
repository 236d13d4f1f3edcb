"""Scheduled jobs: once per interval across replicas, retried after failure, recorded in job_runs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.schedule import Job, ScheduleError, Scheduler, is_due
from shared.store import open_database
from shared.store.job_runs import JobRun


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_each_job_runs_once_per_interval_across_replicas(db_url: str) -> None:
    """Four schedulers on one database, asked together again and again, run a due job once per interval."""
    clock = Clock()
    runs: list[str] = []

    async def purge() -> str:
        runs.append("purge")
        await asyncio.sleep(0.05)  # long enough for the others to ask while it runs
        return "purged 3 clicks"

    dbs = [await open_database(db_url) for _ in range(4)]
    schedulers = [Scheduler(db, [Job("retention", 3600, purge)], clock=clock) for db in dbs]
    for _ in range(3):
        await asyncio.gather(*(s.run_due() for s in schedulers))
    assert runs == ["purge"]
    clock.now += 1800
    await asyncio.gather(*(s.run_due() for s in schedulers))
    assert runs == ["purge"]
    clock.now += 1800
    for _ in range(2):
        await asyncio.gather(*(s.run_due() for s in schedulers))
    assert runs == ["purge", "purge"]
    last = (await schedulers[0].last_runs())["retention"]
    assert last.outcome == "ok" and last.detail == "purged 3 clicks" and last.succeeded_at == clock.now
    for db in dbs:
        await db.close()


async def test_failed_job_is_recorded_and_retried_sooner(db_url: str) -> None:
    """A job that raises is marked failed with the error, and tried again after retry_after, not a full interval."""
    clock = Clock()
    attempts: list[int] = []

    async def flaky() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("feed host unreachable")

    db = await open_database(db_url)
    sched = Scheduler(db, [Job("feeds", 3600, flaky, retry_after=60)], clock=clock)
    assert await sched.run_due() == ["feeds"]
    failed = (await sched.last_runs())["feeds"]
    assert failed.outcome == "failed" and "feed host unreachable" in failed.detail and failed.succeeded_at is None
    clock.now += 30
    assert await sched.run_due() == []
    clock.now += 31
    assert await sched.run_due() == ["feeds"]
    assert (await sched.last_runs())["feeds"].outcome == "ok"
    await db.close()


@pytest.mark.parametrize(
    ("last", "now", "due"),
    [
        (None, 0.0, True),
        (JobRun("j", 100.0, 110.0, 110.0, "r", "ok", ""), 150.0, False),
        (JobRun("j", 100.0, 110.0, 110.0, "r", "ok", ""), 200.0, True),
        (JobRun("j", 100.0, None, None, "r", "running", ""), 150.0, False),  # a live (or dead) run: wait
        (JobRun("j", 100.0, None, None, "r", "running", ""), 200.0, True),  # its worker died: take over
        (JobRun("j", 100.0, 105.0, None, "r", "failed", ""), 114.0, False),
        (JobRun("j", 100.0, 105.0, None, "r", "failed", ""), 115.0, True),
    ],
)
def test_due_table(last: JobRun | None, now: float, due: bool) -> None:
    """Due after ``every`` since the last start; after a failure, after ``retry_after`` since it ended."""

    async def nothing() -> None:
        return None

    assert is_due(Job("j", 100.0, nothing, retry_after=10.0), last, now) is due


def test_bad_jobs_are_refused() -> None:
    """Empty names, non-positive intervals and duplicate names are ScheduleErrors."""

    async def nothing() -> None:
        return None

    with pytest.raises(ScheduleError):
        Job("", 10, nothing)
    with pytest.raises(ScheduleError):
        Job("x", 0, nothing)
    with pytest.raises(ScheduleError):
        Scheduler(None, [Job("x", 1, nothing), Job("x", 2, nothing)])  # type: ignore[arg-type]


async def test_worker_role_runs_the_retention_purge(aiohttp_client: Any, make_settings: Any) -> None:
    """A worker process runs the scheduled retention purge at start and records it in job_runs."""
    from safelinks.server import create_app
    from shared.services import SERVICES

    client = await aiohttp_client(create_app(make_settings(), role="worker"))
    db = client.server.app[SERVICES].db
    for _ in range(100):
        row = await db.fetchone("SELECT outcome, detail FROM job_runs WHERE name = 'retention'")
        if row and row["outcome"] == "ok":
            break
        await asyncio.sleep(0.05)
    assert row is not None and row["outcome"] == "ok" and row["detail"].startswith("purged")
