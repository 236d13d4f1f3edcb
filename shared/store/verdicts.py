"""The ``verdicts`` table: administrators' verdicts, one per lookup expression (``shared.verdicts.admin``)."""

from __future__ import annotations

import builtins
from dataclasses import dataclass

from shared.store import counters
from shared.store.alerts import with_contains
from shared.store.database import Database, Executor, Row

__all__ = ["COUNTER", "StoredVerdict", "VerdictTable"]

COUNTER = "verdicts"


@dataclass(frozen=True, slots=True)
class StoredVerdict:
    """One row of ``verdicts`` (``set_at`` in epoch seconds, UTC)."""

    expression: str
    verdict: str
    threat_types: str  # comma-separated, as stored
    detection_method: str
    reason: str
    set_by: str | None
    set_at: float

    @classmethod
    def from_row(cls, r: Row) -> StoredVerdict:
        """The verdict a row holds."""
        return cls(r["expression"], r["verdict"], r["threat_types"], r["detection_method"], r["reason"],
                   r["set_by"], r["set_at"])


class VerdictTable:
    """Rows of ``verdicts``: read whole for the in-memory mirror, paged for listings, set and cleared in
    the caller's transaction (with the change counter that tells other processes to reload)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def version(self) -> int:
        """The table's change counter: it moves on every write, in any process."""
        return await counters.read(self._db, COUNTER)

    async def all(self) -> builtins.list[StoredVerdict]:
        """Every verdict, in no particular order."""
        return [StoredVerdict.from_row(r) for r in await self._db.fetchall("SELECT * FROM verdicts")]

    @staticmethod
    async def verdict_of(tx: Executor, expression: str) -> str | None:
        """The verdict stored for ``expression``, or None."""
        row = await tx.fetchone("SELECT verdict FROM verdicts WHERE expression = ?", (expression,))
        return row["verdict"] if row else None

    @staticmethod
    async def put(tx: Executor, expression: str, verdict: str, threat_types: str, detection_method: str,
                  source: str, reason: str, set_by: str | None, at: float) -> None:
        """Store ``verdict`` for ``expression``, replacing the one there (its detection method and source stay)."""
        await tx.execute(
            "INSERT INTO verdicts (expression, verdict, threat_types, detection_method, source, "
            "reason, set_by, set_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (expression) DO UPDATE SET verdict = excluded.verdict, "
            "threat_types = excluded.threat_types, reason = excluded.reason, "
            "set_by = excluded.set_by, set_at = excluded.set_at",
            (expression, verdict, threat_types, detection_method, source, reason, set_by, at),
        )

    @staticmethod
    async def delete(tx: Executor, expression: str) -> None:
        """Remove the verdict on ``expression``, if any."""
        await tx.execute("DELETE FROM verdicts WHERE expression = ?", (expression,))

    @staticmethod
    async def changed(tx: Executor) -> None:
        """Move the change counter in the writing transaction, so every process reloads at its commit."""
        await counters.bump(tx, COUNTER)

    async def page(self, *, contains: str | None = None, top: int = 50,
                   skip: int = 0) -> tuple[builtins.list[StoredVerdict], bool]:
        """A page of verdicts, newest first (optionally whose expression contains a text, any case), and
        whether more follow."""
        where, params = with_contains("", [], {"expression": contains})
        rows = await self._db.fetchall(
            f"SELECT * FROM verdicts{where} ORDER BY set_at DESC, expression LIMIT {int(top) + 1} OFFSET {int(skip)}",
            params)
        return [StoredVerdict.from_row(r) for r in rows[:top]], len(rows) > top

    async def list(self) -> builtins.list[StoredVerdict]:
        """Every verdict, newest first."""
        return [StoredVerdict.from_row(r)
                for r in await self._db.fetchall("SELECT * FROM verdicts ORDER BY set_at DESC")]
