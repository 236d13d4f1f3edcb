"""Reading the ``verdict_changes`` log in the order it was written (``shared.verdicts.changes`` writes it)."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.events import VerdictChanged
from shared.store.database import Database, Row

__all__ = ["VerdictChangeTable", "change_from_row"]


def change_from_row(r: Row) -> VerdictChanged:
    """The change a ``verdict_changes`` row records."""
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
    """Rows of ``verdict_changes``, read after a cursor or from a time on."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def after(self, position: int, limit: int) -> list[VerdictChanged]:
        """Up to ``limit`` changes after id ``position``, in id order."""
        rows = await self._db.fetchall(
            f"SELECT * FROM verdict_changes WHERE id > ? ORDER BY id LIMIT {int(limit)}", (position,))
        return [change_from_row(r) for r in rows]

    async def since(self, since: datetime) -> list[VerdictChanged]:
        """Every change made from ``since`` on, in the order written."""
        rows = await self._db.fetchall(
            "SELECT * FROM verdict_changes WHERE changed_at >= ? ORDER BY id", (since.timestamp(),)
        )
        return [change_from_row(r) for r in rows]
