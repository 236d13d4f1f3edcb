"""Scheduled jobs that must run once per interval across all replicas (retention purge, feed updates).

Every worker runs a ``Scheduler`` over the same jobs. When a job falls due, each scheduler asks to
lead it (``shared.store.leader``); the one that leads reads the job's last run from ``job_runs``
again — under the leadership, so the answer cannot change underneath it — and runs the job only
if it is still due. N workers therefore run each job once per interval, and a job whose worker
died mid-run is picked up by another once its interval (or its retry delay after a failure) has
passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from shared.errors import SafeLinksError
from shared.store.database import Database
from shared.store.errors import StoreError
from shared.store.job_runs import JobRun, JobRunTable

log = logging.getLogger(__name__)
JobBody = Callable[[], Awaitable[str | None]]


class ScheduleError(SafeLinksError):
    """A job was defined with a name or interval that cannot work."""


@dataclass(frozen=True, slots=True)
class Job:
    """``run`` returns a short detail for the record (``"purged 12 clicks"``) or None."""

    name: str
    every: float
    run: JobBody
    retry_after: float = 60.0  # after a failure, try again this soon (at most ``every``)

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 100:
            raise ScheduleError("a job name is 1 to 100 characters")
        if self.every <= 0 or self.retry_after <= 0:
            raise ScheduleError(f"job {self.name}: intervals must be positive")


def is_due(job: Job, last: JobRun | None, now: float) -> bool:
    if last is None:
        return True
    if last.outcome == "failed" and last.finished_at is not None:
        return now >= last.finished_at + min(job.retry_after, job.every)
    return now >= last.started_at + job.every


class Scheduler:
    """Runs due jobs, each under its leader; ``run`` loops forever, ``run_due`` once."""

    def __init__(self, db: Database, jobs: Sequence[Job], *, clock: Callable[[], float] = time.time,
                 tick: float = 5.0) -> None:
        names = [j.name for j in jobs]
        if len(set(names)) != len(names):
            raise ScheduleError("job names must be unique")
        self._db = db
        self._runs = JobRunTable(db)
        self._jobs = list(jobs)
        self._clock = clock
        self._tick = tick
        self.runner = f"{uuid.uuid4().hex[:12]}"

    @property
    def jobs(self) -> list[Job]:
        return list(self._jobs)

    async def last_runs(self) -> dict[str, JobRun]:
        """The last run of every job that ever ran, by name."""
        return await self._runs.all()

    async def run_due(self) -> list[str]:
        """Run every job that is due and that this process gets to lead; return their names."""
        known = await self.last_runs()
        ran = []
        for job in self._jobs:
            if is_due(job, known.get(job.name), self._clock()) and await self._run_if_leading(job):
                ran.append(job.name)
        return ran

    async def _run_if_leading(self, job: Job) -> bool:
        async with self._db.leader(f"job:{job.name}") as lead:
            if not lead:
                return False
            if not is_due(job, await self._runs.get(job.name), self._clock()):
                return False  # another worker ran it between our look and our leadership
            await self._record_start(job)
            try:
                detail = await job.run()
            except asyncio.CancelledError:
                await asyncio.shield(self._record_end(job, "failed", "cancelled"))
                raise
            except Exception as exc:  # a failing job is recorded and retried; the scheduler lives on
                log.error("job %s failed: %s: %s", job.name, type(exc).__name__, exc)
                await self._record_end(job, "failed", f"{type(exc).__name__}: {exc}")
            else:
                await self._record_end(job, "ok", detail or "")
            return True

    async def _record_start(self, job: Job) -> None:
        await self._runs.started(job.name, self._clock(), self.runner)

    async def _record_end(self, job: Job, outcome: str, detail: str) -> None:
        now = self._clock()
        with contextlib.suppress(StoreError):  # unrecorded, the job is simply due again sooner
            await self._runs.ended(job.name, now, outcome, detail)

    async def run(self) -> None:
        """Forever: run what is due, then wait a tick."""
        while True:
            try:
                await self.run_due()
            except StoreError as exc:  # the database may be away for a while; keep ticking
                log.warning("scheduler round failed: %s", exc)
            await asyncio.sleep(self._tick)
