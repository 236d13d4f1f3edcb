"""Waiting on a condition instead of sleeping: a test goes on as soon as what it waits for is true."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0, every: float = 0.05) -> Any:
    """Await ``check()`` until it is truthy and return it; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s (last: {found!r})")
        await asyncio.sleep(every)


async def delivered(db: Any) -> None:
    """Wait until the outbox has nothing left to send: what was going to arrive has arrived.

    A test that proves something did *not* happen waits on this instead of sleeping: whatever the
    application would do about it is an outbox item, written before the activity is answered.
    """

    async def empty() -> bool:
        row = await db.fetchone("SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending'")
        return row is not None and row["n"] == 0

    await eventually(empty)
