"""Reading the ``verdict_changes`` log (``shared.verdicts.changes`` writes it)."""

from __future__ import annotations

from collections.abc import Collection
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
    """Rows of ``verdict_changes``, read for the expressions an incident's story is about."""

    def __init__(self, db: Database) -> None:
        self._db = db

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
