"""The ``job_runs`` table: the last run of each scheduled job, shared by every worker (``shared.schedule``)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.store.database import Database, Row

__all__ = ["JobRun", "JobRunTable"]


@dataclass(frozen=True, slots=True)
class JobRun:
    """The last run of a job, as recorded."""

    name: str
    started_at: float
    finished_at: float | None
    succeeded_at: float | None
    runner: str
    outcome: str  # running | ok | failed
    detail: str

    @classmethod
    def from_row(cls, r: Row) -> JobRun:
        """The run a row holds."""
        return cls(r["name"], float(r["started_at"]), r["finished_at"], r["succeeded_at"], r["runner"],
                   r["outcome"], r["detail"])


class JobRunTable:
    """Rows of ``job_runs``: one per job name, rewritten at each start and end of a run."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def all(self) -> dict[str, JobRun]:
        """The last run of every job that ever ran, by job name."""
        rows = await self._db.fetchall("SELECT * FROM job_runs")
        return {r["name"]: JobRun.from_row(r) for r in rows}

    async def get(self, name: str) -> JobRun | None:
        """The last run of job ``name``, or None if it never ran."""
        row = await self._db.fetchone("SELECT * FROM job_runs WHERE name = ?", (name,))
        return JobRun.from_row(row) if row else None

    async def started(self, name: str, now: float, runner: str) -> None:
        """Record that ``runner`` started job ``name`` at ``now`` (the previous run's outcome is replaced)."""
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE job_runs SET started_at = ?, finished_at = NULL, runner = ?, outcome = 'running', "
                "detail = '' WHERE name = ?", (now, runner, name))
            if not changed:
                await tx.execute(
                    "INSERT INTO job_runs (name, started_at, runner, outcome) VALUES (?, ?, ?, 'running')",
                    (name, now, runner))

    async def ended(self, name: str, now: float, outcome: str, detail: str) -> None:
        """Record how the run of job ``name`` ended (an ``ok`` run also counts as its last success)."""
        succeeded = ", succeeded_at = ?" if outcome == "ok" else ""
        params: tuple[object, ...] = (now, outcome, detail[:1000], *((now,) if outcome == "ok" else ()), name)
        await self._db.execute(
            f"UPDATE job_runs SET finished_at = ?, outcome = ?, detail = ?{succeeded} WHERE name = ?", params)
