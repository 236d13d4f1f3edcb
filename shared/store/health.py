"""Whether the database answers at all: the one question health checks ask the store."""

from __future__ import annotations

from shared.store.database import Executor

__all__ = ["ping"]


async def ping(db: Executor) -> None:
    """Run the cheapest query there is; raise what the database raises when it does not answer."""
    await db.fetchone("SELECT 1 AS ok")
