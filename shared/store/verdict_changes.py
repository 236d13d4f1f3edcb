"""Reading the ``verdict_changes`` log by what it is about (``shared.verdicts.changes`` writes it)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from shared.store.database import Database, Row

__all__ = ["VerdictChangeTable"]


class VerdictChangeTable:
    """Rows of ``verdict_changes``, read for the expressions a story is about."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def on_expressions(self, expressions: Collection[str], since: datetime, *, limit: int = 200) -> list[Row]:
        """The changes to any of ``expressions`` made from ``since`` on, oldest first."""
        if not expressions:
            return []
        return await self._db.fetchall(
            f"SELECT * FROM verdict_changes WHERE expression IN ({', '.join('?' for _ in expressions)}) "
            f"AND changed_at >= ? ORDER BY changed_at, id LIMIT {int(limit)}",
            (*sorted(expressions), since.timestamp()),
        )
