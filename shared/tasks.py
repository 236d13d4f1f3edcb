"""Stopping background tasks: the one teardown every owner of a task uses."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

__all__ = ["stop_tasks"]


async def stop_tasks(tasks: Iterable[asyncio.Future[Any] | None]) -> None:
    """Cancel every task, then wait for each to end; a task's own ``CancelledError`` is its normal end.

    All are cancelled before any is awaited, so one slow to stop does not keep the others running. If the
    caller itself is cancelled while it waits, that cancellation is passed on once every task has ended:
    swallowing it would leave the caller running (a loop whose owner is waiting for it to stop).
    """
    running = [t for t in tasks if t is not None]
    for task in running:
        task.cancel()
    me = asyncio.current_task()
    # A caller already being cancelled (stopping tasks in a ``finally``) has that cancellation on its way out;
    # only a request made while we wait is ours to pass on.
    before = me.cancelling() if me is not None else 0
    interrupted = False
    for task in running:
        try:
            await task
        except asyncio.CancelledError:
            if me is not None and me.cancelling() > before:
                interrupted = True
    if interrupted:
        raise asyncio.CancelledError
