"""Group commit: many concurrent callers, one transaction, and each caller waits for its commit.

A caller's ``write`` returns only after the transaction holding its row has committed, so a click
is durable before the proxy answers. The writer flushes as soon as the queue drains instead of
waiting on a timer: under light load each row commits alone at once, under heavy load rows that
arrived during the previous commit share the next one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from shared.store.database import Database
from shared.store.errors import DuplicateKey, StoreError
from shared.tasks import stop_tasks

log = logging.getLogger(__name__)


class BatchWriter:
    """Inserts rows of one statement in group-committed batches."""

    def __init__(self, db: Database, sql: str, *, max_batch: int = 256) -> None:
        self._db = db
        self._sql = sql
        self._max = max_batch
        self._queue: asyncio.Queue[tuple[Sequence[Any], asyncio.Future[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        if self._task is None:
            # Kept rather than looked up for every row (on CPython 3.11 each lookup is also a getpid()
            # system call).
            self._loop = asyncio.get_running_loop()
            self._task = self._loop.create_task(self._run(), name="batch-writer")

    def write(self, params: Sequence[Any]) -> asyncio.Future[None]:
        """Queue a row; the future is done when it is committed (or holds the store's error).

        A future rather than a coroutine: awaiting it directly saves a frame on every resumption of the
        hot path that waits for its click to be committed.
        """
        if self._task is None or self._loop is None:
            raise StoreError("batch writer is not running")
        fut: asyncio.Future[None] = self._loop.create_future()
        self._queue.put_nowait((params, fut))
        return fut

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        if self._task is None:
            return
        await self._queue.join()
        await stop_tasks([self._task])
        self._task = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[tuple[Sequence[Any], asyncio.Future[None]]]) -> None:
        try:
            # One statement batch, one transaction, one trip to the database.
            await self._db.executemany(self._sql, [p for p, _ in batch])
        except DuplicateKey:
            # One bad row must not fail its neighbours: retry them one by one.
            await self._commit_singly(batch)
            return
        except Exception as exc:  # the store's failure belongs to every waiting caller
            log.error("batch commit failed (%d rows): %s", len(batch), exc)
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc if isinstance(exc, StoreError) else StoreError(str(exc)))
            return
        for _, fut in batch:
            if not fut.done():
                fut.set_result(None)

    async def _commit_singly(self, batch: list[tuple[Sequence[Any], asyncio.Future[None]]]) -> None:
        for params, fut in batch:
            try:
                await self._db.execute(self._sql, params)
            except Exception as exc:
                if not fut.done():
                    fut.set_exception(exc if isinstance(exc, StoreError) else StoreError(str(exc)))
            else:
                if not fut.done():
                    fut.set_result(None)
