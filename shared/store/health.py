"""Whether the database answers: the health checks of the console and the proxy ask it here."""

from __future__ import annotations

from shared.store.database import Executor

__all__ = ["ping"]


async def ping(db: Executor) -> None:
    """Ask the database the smallest question; raises what the backend raises when it cannot answer."""
    await db.fetchone("SELECT 1 AS ok")
