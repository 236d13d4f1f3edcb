"""The ``verdict_changes`` table: every change of mind about an expression, from any source
(``shared.verdicts.changes`` writes the feeds', scans' and Safe Browsing's; admin verdicts write their own)."""

from __future__ import annotations

from collections.abc import Iterable

from shared.store.database import Database, Executor

__all__ = ["ChangeRow", "VerdictChangeTable"]

# expression, old verdict, new verdict, threat types (comma-separated), reason
ChangeRow = tuple[str, str, str, str, str]

_INSERT = ("INSERT INTO verdict_changes (expression, old_verdict, new_verdict, threat_types, source, "
           "reason, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)")


class VerdictChangeTable:
    """Rows of ``verdict_changes``: appended one at a time (in an admin's transaction) or a batch at a time."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    async def add(tx: Executor, expression: str, old: str, new: str, threat_types: str, source: str, reason: str,
                  at: float) -> int:
        """Append one change in the caller's transaction; return its id."""
        await tx.execute(_INSERT, (expression, old, new, threat_types, source, reason, at))
        row = await tx.fetchone("SELECT MAX(id) AS id FROM verdict_changes WHERE expression = ?", (expression,))
        return int(row["id"]) if row else 0

    async def add_batch(self, source: str, rows: Iterable[ChangeRow], at: float) -> dict[str, int]:
        """Append changes made by ``source`` at ``at`` (each expression at most once) in one transaction;
        return their ids by expression."""
        async with self._db.transaction() as tx:
            row = await tx.fetchone("SELECT COALESCE(MAX(id), 0) AS id FROM verdict_changes")
            floor = int(row["id"]) if row else 0
            await tx.executemany(
                _INSERT, ((expression, old, new, threats, source, reason, at)
                          for expression, old, new, threats, reason in rows))
            # Ids come back by expression: one source's batch names each expression once, and
            # nothing else writes rows for this source at this instant.
            found = await tx.fetchall(
                "SELECT id, expression FROM verdict_changes WHERE id > ? AND source = ? AND changed_at = ?",
                (floor, source, at),
            )
        return {r["expression"]: int(r["id"]) for r in found}
