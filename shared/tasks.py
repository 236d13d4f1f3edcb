"""Stopping background tasks: the one teardown every owner of a task uses."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

__all__ = ["stop_tasks"]


async def stop_tasks(tasks: Iterable[asyncio.Future[Any] | None]) -> None:
    """Cancel every task, then wait for each to end; a task's own ``CancelledError`` is its normal end.

    All are cancelled before any is awaited, so one slow to stop does not keep the others running.
    """
    running = [t for t in tasks if t is not None]
    for task in running:
        task.cancel()
    for task in running:
        with contextlib.suppress(asyncio.CancelledError):
            await task
