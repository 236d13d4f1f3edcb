"""An in-process event bus: the proxy publishes stored clicks, verdict sources publish changes.

Publishing never waits for subscribers, so a slow alert rule cannot slow a click. The bus is a
trigger, not the record: everything published is already in the store, and subscribers that need
completeness catch up from the store after a restart.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from shared.clicks import Click

log = logging.getLogger(__name__)
E = TypeVar("E")
Handler = Callable[[Any], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ClickRecorded:
    """A click was committed to the store."""

    click: Click


@dataclass(frozen=True, slots=True)
class VerdictChanged:
    """A source changed its mind about an expression (a host, a path prefix or one URL)."""

    change_id: int
    expression: str
    old_verdict: str
    new_verdict: str
    threat_types: tuple[str, ...]
    source: str
    reason: str
    changed_at: datetime


class EventBus:
    """Typed publish/subscribe inside one process.

    A coroutine handler runs as its own task. A plain function runs inline, at once: that is the
    cheap way to wake a worker (set an event), which matters because every click is published.
    """

    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = defaultdict(list)
        self._inline: dict[type, list[Callable[[Any], None]]] = defaultdict(list)
        self._pending: set[asyncio.Task[None]] = set()

    def subscribe(self, kind: type[E], handler: Callable[[E], Awaitable[None]] | Callable[[E], None]) -> None:
        if inspect.iscoroutinefunction(handler):
            self._handlers[kind].append(handler)
        else:
            self._inline[kind].append(handler)  # type: ignore[arg-type]

    def publish(self, event: object) -> None:
        """Hand the event to every subscriber of its type, without waiting for them."""
        for wake in self._inline.get(type(event), ()):
            try:
                wake(event)
            except Exception:
                log.exception("event handler %s failed on %s", getattr(wake, "__qualname__", wake),
                              type(event).__name__)
        for handler in self._handlers.get(type(event), ()):
            task = asyncio.create_task(self._run(handler, event))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _run(self, handler: Handler, event: object) -> None:
        try:
            await handler(event)
        except Exception:
            log.exception("event handler %s failed on %s", getattr(handler, "__qualname__", handler),
                          type(event).__name__)

    async def drain(self) -> None:
        """Wait for the handlers already started (shutdown and tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
