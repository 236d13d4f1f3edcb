"""Deleting many rows a few thousand at a time, so a large purge never holds long locks on a busy table."""

from __future__ import annotations

from shared.store.database import Executor

__all__ = ["BATCH", "delete_in_batches"]

BATCH = 5000


async def delete_in_batches(db: Executor, sql: str, params: tuple[object, ...]) -> int:
    """Run ``sql`` (a DELETE of at most ``BATCH`` rows) until it deletes fewer; return how many went."""
    total = 0
    while True:
        n = await db.execute(sql, params)
        total += n
        if n < BATCH:
            return total
