"""The durable outbox: every notification (Teams card, e-mail, webhook) waits in the store until delivered.

A message is enqueued in the same transaction as the thing it announces, so an alert never exists
without its notifications. Workers claim due items under a lease (several workers never deliver
one item at once; a worker that dies mid-delivery loses its lease and the item is tried again),
deliver them through the handler registered for their kind, and retry failures with exponential
backoff and jitter, honouring a handler's "retry after", until they succeed. Items that share a
``key`` (a Teams conversation, say) go out strictly in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.errors import SafeLinksError
from shared.metrics import Registry
from shared.store.database import Database, Executor
from shared.store.outbox import OutboxItem, OutboxTable

log = logging.getLogger(__name__)

Handler = Callable[["OutboxItem"], Awaitable[dict[str, Any] | None]]
_MAX_BACKOFF = 300.0
_LEASE_SECONDS = 60.0


class RetryLater(SafeLinksError):
    """Raised by a handler: the delivery failed for now; ``after`` seconds if the far side said so."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


class PermanentFailure(SafeLinksError):
    """Raised by a handler: this item can never be delivered (it stays, marked failed, for people to see)."""


class _Bucket:
    """A token bucket: at most ``rate`` starts per second, bursts of one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.stamp = time.monotonic()
        self.lock = asyncio.Lock()

    async def take(self) -> None:
        async with self.lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


@dataclass
class _Route:
    handler: Handler
    per_key_rate: float | None
    global_bucket: _Bucket | None
    key_buckets: dict[str, _Bucket]


def backoff(attempts: int, *, rng: random.Random | None = None) -> float:
    """Seconds before the next try: 1, 2, 4 … capped at five minutes, with ±25 % jitter."""
    base = min(_MAX_BACKOFF, 2.0 ** max(0, attempts - 1))
    return base * (0.75 + 0.5 * (rng or random).random())


class Outbox:
    """Durable, ordered-per-key, retried delivery."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] | None = None,
                 metrics: Registry | None = None, poll_interval: float = 0.5,
                 lease_seconds: float = _LEASE_SECONDS) -> None:
        self._db = db
        self._table = OutboxTable(db)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._routes: dict[str, _Route] = {}
        self._wake = asyncio.Event()
        self._worker = uuid.uuid4().hex[:12]
        self._poll = poll_interval
        self._lease = lease_seconds  # a worker that dies mid-delivery holds its items this long
        registry = metrics or Registry()
        self._delivered = registry.counter("safelinks_outbox_delivered_total", "Outbox deliveries, by kind.")
        self._failures = registry.counter("safelinks_outbox_failures_total", "Failed delivery attempts, by kind.")

    def _now(self) -> float:
        return self._clock().timestamp()

    def register(self, kind: str, handler: Handler, *, per_key_rate: float | None = None,
                 global_rate: float | None = None) -> None:
        self._routes[kind] = _Route(handler, per_key_rate, _Bucket(global_rate) if global_rate else None, {})

    async def enqueue(self, kind: str, payload: dict[str, Any], *, key: str = "",
                      dedupe_key: str | None = None, tx: Executor | None = None,
                      replace_pending: bool = False, not_before: float | None = None) -> int | None:
        """Add an item (inside ``tx`` when given). A repeated ``dedupe_key`` is ignored: returns None.

        With ``replace_pending``, ``dedupe_key`` names a slot instead: an item of that slot still waiting
        (not yet claimed) takes the new payload, so a burst of updates of one thing (an incident's card)
        is one delivery of its latest state; once the slot's item is claimed or sent, a new one is added.
        ``not_before`` (epoch seconds) holds the item until then (a summary due at the end of a window).
        """
        if tx is None:
            async with self._db.transaction() as own:
                item_id = await self.enqueue(kind, payload, key=key, dedupe_key=dedupe_key, tx=own,
                                             replace_pending=replace_pending, not_before=not_before)
            self._wake.set()  # again after the commit: a worker woken before it could not see the row yet
            return item_id
        now = self._now()
        if replace_pending and dedupe_key:
            waiting = await self._table.replace_waiting(tx, dedupe_key, payload, now)
            if waiting is not None:
                self._wake.set()
                return waiting
            # The slot's last item is out (or on its way): it gives the slot up to the new one.
            await self._table.release_slot(tx, dedupe_key)
        due = max(now, not_before) if not_before is not None else now
        item_id = await self._table.insert(tx, kind, key, payload, dedupe_key, now, due)
        self._wake.set()
        return item_id

    async def pending_payload(self, dedupe_key: str, tx: Executor) -> dict[str, Any] | None:
        """The payload of the item named ``dedupe_key`` while it still waits unclaimed, else None."""
        return await self._table.waiting_payload(tx, dedupe_key, self._now())

    async def edit_waiting(self, tx: Executor, kind: str, key: str, edit: Callable[[dict[str, Any]], bool], *,
                           now: float | None = None) -> bool:
        """Change a waiting item's payload in place (``OutboxTable.edit_waiting``); True when one was changed."""
        return await self._table.edit_waiting(tx, kind, key, self._now() if now is None else now, edit)

    def wake(self) -> None:
        """Look for due items now (call after committing a transaction that enqueued some)."""
        self._wake.set()

    async def _claim(self, limit: int) -> list[OutboxItem]:
        kinds = list(self._routes)
        if not kinds:
            return []
        now = self._now()
        return await self._table.claim(kinds, limit, now, now + self._lease, self._worker)

    async def run_once(self, limit: int = 100) -> int:
        """Deliver what is due, once. Returns how many items were tried."""
        items = await self._claim(limit)
        await asyncio.gather(*(self._deliver(item) for item in items))
        return len(items)

    async def run(self, limit: int = 100) -> None:
        """The worker loop: deliver (at most ``limit`` claimed at once), then sleep until woken or the next poll.

        A paced kind should claim no more than it can send within its lease, or another worker takes
        the rest over while they still wait their turn here.
        """
        while True:
            self._wake.clear()  # before the round: a wake-up that arrives during it is not lost
            try:
                tried = await self.run_once(limit)
            except Exception as exc:  # the store may be away; keep the worker alive and try again
                log.warning("outbox round failed: %s", exc)
                tried = 0
            if tried:
                continue
            with contextlib.suppress(TimeoutError):
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can lose a cancellation that
                # arrives as the wake-up does, and a worker being stopped would run on.
                async with asyncio.timeout(self._poll):
                    await self._wake.wait()

    async def _deliver(self, item: OutboxItem) -> None:
        route = self._routes[item.kind]
        if route.global_bucket is not None:
            await route.global_bucket.take()
        if route.per_key_rate and item.key:
            bucket = route.key_buckets.setdefault(item.key, _Bucket(route.per_key_rate))
            await bucket.take()
        try:
            result = await route.handler(item)
        except PermanentFailure as exc:
            self._failures.inc(kind=item.kind, outcome="permanent")
            log.error("outbox item %d (%s) failed for good: %s", item.id, item.kind, exc)
            await self._finish(item, "failed", error=str(exc))
        except RetryLater as exc:
            self._failures.inc(kind=item.kind, outcome="retry")
            await self._retry(item, str(exc), exc.after)
        except Exception as exc:  # an unexpected error is treated as passing: retried with backoff
            self._failures.inc(kind=item.kind, outcome="error")
            log.warning("outbox item %d (%s) failed: %s: %s", item.id, item.kind, type(exc).__name__, exc)
            await self._retry(item, f"{type(exc).__name__}: {exc}", None)
        else:
            self._delivered.inc(kind=item.kind)
            await self._finish(item, "done", result=result)

    async def _retry(self, item: OutboxItem, error: str, after: float | None) -> None:
        attempts = item.attempts + 1
        delay = after if after is not None and after >= 0 else backoff(attempts)
        await self._table.retry(item.id, self._worker, attempts, self._now() + delay, error[:1000])

    async def _finish(self, item: OutboxItem, status: str, *, result: dict[str, Any] | None = None,
                      error: str | None = None) -> None:
        await self._table.finish(item.id, status, item.attempts + 1, result,
                                 error[:1000] if error else item.last_error, self._now())

    async def list(self, status: str | None = None, *, limit: int = 500) -> list[OutboxItem]:
        return await self._table.list(status, limit=limit)

    async def result_of(self, dedupe_key: str) -> dict[str, Any] | None:
        return await self._table.result_of(dedupe_key)
