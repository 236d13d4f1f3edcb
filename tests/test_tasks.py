"""Stopping background tasks: every task ends, and the caller's own cancellation is never swallowed."""

from __future__ import annotations

import asyncio

import pytest

from shared.tasks import stop_tasks


def slow_to_stop(stopping: asyncio.Event) -> asyncio.Task[None]:
    """A task that, once cancelled, still has work to do before it ends (it ends when cancelled again)."""

    async def run() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopping.set()
            await asyncio.Event().wait()

    return asyncio.create_task(run())


async def test_every_task_is_cancelled_and_awaited() -> None:
    """All tasks end cancelled; ``None`` entries (tasks never started) are skipped."""
    tasks = [asyncio.create_task(asyncio.Event().wait()) for _ in range(3)]
    await stop_tasks([*tasks, None])
    assert all(t.cancelled() for t in tasks)


async def test_a_caller_cancelled_while_it_waits_is_cancelled() -> None:
    """An owner cancelled while it waits for its tasks to stop ends cancelled instead of carrying on."""
    stopping = asyncio.Event()
    carried_on = asyncio.Event()

    async def owner() -> None:
        while True:  # like a scheduler: stop this round's helper, then wait for the next round
            await stop_tasks([slow_to_stop_task])
            carried_on.set()
            await asyncio.Event().wait()

    slow_to_stop_task = slow_to_stop(stopping)
    running = asyncio.create_task(owner())
    await asyncio.wait_for(stopping.wait(), 5)  # the owner is inside stop_tasks, waiting
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(running, 5)
    assert not carried_on.is_set()


async def test_stopping_in_a_finally_of_a_cancelled_owner_still_cleans_up() -> None:
    """An owner cancelled first stops its tasks in its ``finally`` and goes on with its clean-up, then ends."""
    started = asyncio.Event()
    cleaned = asyncio.Event()
    helper = asyncio.create_task(asyncio.Event().wait())

    async def owner() -> None:
        try:
            started.set()
            await asyncio.Event().wait()
        finally:
            await stop_tasks([helper])
            cleaned.set()

    running = asyncio.create_task(owner())
    await asyncio.wait_for(started.wait(), 5)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert cleaned.is_set() and helper.cancelled()
