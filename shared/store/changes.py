"""The store's own change signals: how a process learns, on the next click, that another one changed a table.

Cached tables (admin verdicts, the Tenant Allow/Block List) carry a change counter bumped in the
writing transaction (``shared.store.counters``). Each backend tells readers cheaply that a counter
may have moved, so a change made by the CLI, the API or a card applies to the next click in every
process instead of at the next timed refresh:

* SQLite: ``PRAGMA data_version`` on a connection of its own changes whenever another connection
  commits. Read on the event loop's thread (tens of µs), so at most once per ``every`` seconds; when it
  moved, the counters themselves are read on the same connection (one tiny table), so the click log's
  own commits, which move data_version all the time, cost no reload.
* PostgreSQL: ``LISTEN``; ``counters.bump`` sends ``NOTIFY`` in the writing transaction, delivered at
  its commit. The channel is ``CHANNEL`` scoped to the current schema (``shared.store.postgres_sql``), so
  stores in other schemas of the same database are not heard. While the listening connection is down
  (a restart, a fail-over) the signal says "changed" once per ``fallback_every`` seconds, so readers
  poll until it is back.

``poll()`` is synchronous and cheap; it says True once per change (or once per fallback round).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from shared.tasks import stop_tasks

log = logging.getLogger(__name__)
CHANNEL = "safelinks_changes"
CHECK_EVERY = 0.02  # seconds between two data_version reads on the event loop
FALLBACK_EVERY = 1.0  # seconds between polls while PostgreSQL's listening connection is down


class ChangeSignal(Protocol):
    def poll(self, *, now: bool = False) -> bool:
        """Whether a cached table may have changed since the last True; ``now`` skips the SQLite throttle
        (for paths that are not per click, such as a bot message)."""
        ...

    async def start(self) -> None:
        ...

    async def close(self) -> None:
        ...


class NoSignal:
    """A store no other process can write (SQLite in memory): nothing ever changes behind our back."""

    def poll(self, *, now: bool = False) -> bool:
        return False

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class DataVersionSignal:
    """SQLite: ``PRAGMA data_version`` checked at most once per ``every`` seconds, then the counters."""

    def __init__(self, path: str, *, every: float = CHECK_EVERY) -> None:
        self._path = path
        self._every = every
        self._next = 0.0
        self._conn: sqlite3.Connection | None = None
        self._data_version = -1
        self._counters: list[tuple[str, int]] | None = None

    async def start(self) -> None:
        # Opened once; never waits for a lock (a busy file reads as "maybe changed": the reload waits instead).
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=0)
        conn.execute("PRAGMA query_only=ON")
        self._conn = conn
        self._read()

    def _read(self) -> bool:
        assert self._conn is not None
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if version == self._data_version:
            return False
        self._data_version = version
        counters = self._conn.execute("SELECT name, version FROM change_counters ORDER BY name").fetchall()
        changed = counters != self._counters
        self._counters = counters
        return changed

    def poll(self, *, now: bool = False) -> bool:
        at = time.monotonic()
        if (at < self._next and not now) or self._conn is None:
            return False
        self._next = at + self._every
        try:
            return self._read()
        except sqlite3.Error:
            self._data_version = -1
            return True

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class NotifySignal:
    """PostgreSQL: a connection of its own listening on the store's channel, reconnecting when it is lost."""

    def __init__(self, connect: Callable[[], Awaitable[Any]], channel_of: Callable[[Any], Awaitable[str]], *,
                 fallback_every: float = FALLBACK_EVERY) -> None:
        self._connect = connect  # () -> an asyncpg connection of its own
        self._channel_of = channel_of  # connection -> the channel to listen on (it depends on the schema)
        self._fallback_every = fallback_every
        self._next = 0.0
        self._changed = False
        self._listening = False
        self._task: asyncio.Task[None] | None = None
        self._up = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="change-signal")
        # A serving process starts listening before it answers; a server that is down leaves it polling.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await self._up.wait()

    def _notified(self, *_: Any) -> None:
        self._changed = True

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            conn = None
            try:
                conn = await self._connect()
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(await self._channel_of(conn), self._notified)
                self._listening = True
                self._changed = True  # whatever happened while nobody listened
                self._up.set()
                delay = 0.5
                await lost.wait()
                log.warning("the change-signal connection was lost; polling until it is back")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the server is away: poll meanwhile, try again with backoff
                log.info("cannot listen for changes: %s", exc)
            finally:
                self._listening = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    def poll(self, *, now: bool = False) -> bool:
        if self._listening:
            if self._changed:
                self._changed = False
                return True
            return False
        at = time.monotonic()
        if at < self._next:
            return False
        self._next = at + self._fallback_every
        return True

    async def close(self) -> None:
        await stop_tasks([self._task])
        self._task = None
