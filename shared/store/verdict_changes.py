"""The ``verdict_changes`` table: every change of mind about an expression, from any source
(``shared.verdicts.changes`` writes the feeds', scans' and Safe Browsing's; admin verdicts write their own),
read in id order by its followers."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import UTC, datetime

from shared.events import VerdictChanged
from shared.store.database import Database, Executor, Row

__all__ = ["ChangeRow", "VerdictChangeTable", "change_from_row"]

# expression, old verdict, new verdict, threat types (comma-separated), reason
ChangeRow = tuple[str, str, str, str, str]

_INSERT = ("INSERT INTO verdict_changes (expression, old_verdict, new_verdict, threat_types, source, "
           "reason, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)")


def change_from_row(r: Row) -> VerdictChanged:
    """The change a ``verdict_changes`` row holds."""
    return VerdictChanged(
        change_id=int(r["id"]),
        expression=r["expression"],
        old_verdict=r["old_verdict"],
        new_verdict=r["new_verdict"],
        threat_types=tuple(t for t in (r["threat_types"] or "").split(",") if t),
        source=r["source"],
        reason=r["reason"] or "",
        changed_at=datetime.fromtimestamp(r["changed_at"], UTC),
    )


class VerdictChangeTable:
    """Rows of ``verdict_changes``: appended one at a time (in an admin's transaction) or a batch at a time,
    read after a follower's cursor or from a time on, and read for the expressions an incident's story is about."""

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

    async def after(self, position: int, limit: int) -> list[VerdictChanged]:
        """Up to ``limit`` changes after id ``position``, in id order."""
        rows = await self._db.fetchall(
            f"SELECT * FROM verdict_changes WHERE id > ? ORDER BY id LIMIT {int(limit)}", (position,))
        return [change_from_row(r) for r in rows]

    async def on_expressions(self, expressions: Collection[str], since: datetime, *,
                             limit: int = 200) -> list[VerdictChanged]:
        """The changes to any of ``expressions`` made from ``since`` on, oldest first."""
        if not expressions:
            return []
        rows = await self._db.fetchall(
            f"SELECT * FROM verdict_changes WHERE expression IN ({', '.join('?' for _ in expressions)}) "
            f"AND changed_at >= ? ORDER BY changed_at, id LIMIT {int(limit)}",
            (*sorted(expressions), since.timestamp()),
        )
        return [change_from_row(r) for r in rows]

    async def since(self, since: datetime) -> list[VerdictChanged]:
        """Every change made from ``since`` on, in the order written."""
        rows = await self._db.fetchall(
            "SELECT * FROM verdict_changes WHERE changed_at >= ? ORDER BY id", (since.timestamp(),)
        )
        return [change_from_row(r) for r in rows]
