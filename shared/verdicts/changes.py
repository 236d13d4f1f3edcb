"""The verdict change log: every change of mind, written to `verdict_changes` and announced on the bus.

Feeds, scans and Safe Browsing report their changes here (admin verdicts write their own, in the
transaction that sets them). A feed update may add a hundred thousand expressions at once, so
rows are written in batches, one transaction each, and their events are published batch by
batch with a yield to the event loop between, so clicks keep flowing while a big diff is logged.
The alert engine reads the same rows after a restart, so the bus is a trigger, not the record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice

from shared.events import EventBus, VerdictChanged
from shared.store.database import Database
from shared.store.verdict_changes import VerdictChangeTable
from shared.verdicts.model import Verdict

DEFAULT_BATCH = 2000
_PUBLISH_SLICE = 100


@dataclass(frozen=True, slots=True)
class ExpressionChange:
    """One expression whose verdict moved."""

    expression: str
    old: Verdict
    new: Verdict
    threat_types: tuple[str, ...] = ()
    reason: str = ""


def _batches(items: Iterable[ExpressionChange], size: int) -> Iterator[list[ExpressionChange]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


class ChangeLog:
    """Writes changes for one or more sources; `record` returns how many it wrote."""

    def __init__(self, db: Database, bus: EventBus | None, *, batch: int = DEFAULT_BATCH) -> None:
        self._table = VerdictChangeTable(db)
        self._bus = bus
        self._batch = batch

    async def record(self, source: str, changes: Iterable[ExpressionChange], *, at: datetime) -> int:
        """Log `changes` (each expression at most once) as made by `source` at `at`."""
        stamp = at.astimezone(UTC).timestamp()
        written = 0
        for batch in _batches(changes, self._batch):
            events = await self._write(source, batch, stamp, at)
            written += len(batch)
            for start in range(0, len(events), _PUBLISH_SLICE):
                if self._bus is not None:
                    for event in events[start : start + _PUBLISH_SLICE]:
                        self._bus.publish(event)
                await asyncio.sleep(0)  # let clicks (and the handlers just started) run between slices
        return written

    async def _write(self, source: str, batch: list[ExpressionChange], stamp: float,
                     at: datetime) -> list[VerdictChanged]:
        ids = await self._table.add_batch(
            source, ((c.expression, c.old.value, c.new.value, ",".join(c.threat_types), c.reason) for c in batch),
            stamp)
        return [
            VerdictChanged(change_id=ids.get(c.expression, 0), expression=c.expression, old_verdict=c.old.value,
                           new_verdict=c.new.value, threat_types=c.threat_types, source=source, reason=c.reason,
                           changed_at=at)
            for c in batch
        ]
