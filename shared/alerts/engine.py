"""The alert engine: reads new clicks and verdict changes from the store and raises alerts.

The bus only wakes it. What it processes comes from the store, after a durable cursor (the last
click id and verdict-change id done), advanced in the same transaction as the alerts it led to: an
engine that was down catches up from where it stopped, and one that crashed mid-way does the rest
again (alert keys make that harmless). Two engines on one database may read the same rows; the
unique alert and event keys let only one of them store each alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.alerts.actions import AlertActions
from shared.alerts.drafts import Draft, change_drafts, click_drafts, window_of
from shared.alerts.lookback import covered_clicks
from shared.alerts.ports import ChannelResolver
from shared.alerts.rules import RuleSet, Trigger
from shared.alerts.volume import burst_reached
from shared.alerts.writer import AlertWriter, WriteResult
from shared.events import ClickRecorded, EventBus, VerdictChanged
from shared.metrics import Registry
from shared.store import audit
from shared.store.alerts import AlertStore
from shared.store.audit import Who
from shared.store.clicks import ClickFilter, ClickStore
from shared.store.database import Database, Executor
from shared.store.verdict_changes import VerdictChangeTable

log = logging.getLogger(__name__)
CLICKS, CHANGES = "clicks", "verdict_changes"


@dataclass(frozen=True, slots=True)
class ReplayItem:
    draft: Draft
    exists: bool


@dataclass
class ReplayReport:
    items: list[ReplayItem] = field(default_factory=list)
    created: list[int] = field(default_factory=list)

    @property
    def new(self) -> list[ReplayItem]:
        return [i for i in self.items if not i.exists]


@dataclass
class AlertEngine:
    db: Database
    rules: RuleSet
    writer: AlertWriter
    actions: AlertActions
    channel: ChannelResolver
    clock: Callable[[], datetime]
    metrics: Registry = field(default_factory=Registry)
    batch: int = 500
    poll_interval: float = 1.0

    def __post_init__(self) -> None:
        self.store = AlertStore(self.db)
        self.clicks = ClickStore(self.db)
        self.changes = VerdictChangeTable(self.db)
        self._wake_clicks = asyncio.Event()
        self._wake_changes = asyncio.Event()
        self._raised = self.metrics.counter("safelinks_alerts_total", "Alerts raised, by rule.")
        self._lag = self.metrics.histogram("safelinks_alert_lag_seconds", "From the click to its alert being stored.")

    def subscribe(self, bus: EventBus) -> None:
        bus.subscribe(ClickRecorded, self._on_click)
        bus.subscribe(VerdictChanged, self._on_change)

    def _on_click(self, _: ClickRecorded) -> None:
        self._wake_clicks.set()

    def _on_change(self, _: VerdictChanged) -> None:
        self._wake_changes.set()

    async def run(self) -> None:
        """Forever: process what is new whenever woken, and every ``poll_interval`` regardless."""
        await asyncio.gather(
            self._loop(self._wake_clicks, self.process_clicks),
            self._loop(self._wake_changes, self.process_changes),
        )

    async def _loop(self, wake: asyncio.Event, work: Callable[[], Any]) -> None:
        while True:
            wake.clear()
            try:
                await work()
            except Exception:  # the store may be away for a moment; the cursor keeps our place
                log.exception("alert engine round failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await wake.wait()

    async def process_clicks(self) -> int:
        """Run the click rules over every click after the cursor; return how many alerts were stored."""
        created = 0
        while True:
            position = await self.store.cursor(CLICKS)
            read = await self.clicks.after(position, self.batch)
            if not read:
                return created
            last = read[-1][0]
            drafts = await self._bursts([d for _, click in read for d in click_drafts(self.rules, click)])

            async def advance(tx: Executor, last: int = last) -> None:
                await AlertStore.advance_cursor(tx, CLICKS, last)

            if drafts:
                result = await self.writer.write(
                    drafts, now=self.clock(), channel=await self.channel(), tx_extra=advance
                )
                created += self._count(result)
            else:
                async with self.db.transaction() as tx:
                    await advance(tx)

    async def _bursts(self, drafts: list[Draft]) -> list[Draft]:
        """The drafts, less those of volume rules whose burst has not been reached."""
        if not any(d.rule.volume is not None for d in drafts):
            return drafts
        return [d for d in drafts if d.rule.volume is None or await burst_reached(self.clicks, d.rule, d.click)]

    def _count(self, result: WriteResult) -> int:
        now = self.clock()
        for rule_id, click_at in result.created_from:
            self._raised.inc(rule=rule_id)
            self._lag.observe(max(0.0, (now - click_at).total_seconds()))
        return len(result.created)

    async def process_changes(self) -> int:
        """Run the verdict-change rules over every change after the cursor; return alerts stored."""
        created = 0
        while True:
            position = await self.store.cursor(CHANGES)
            changes = await self.changes.after(position, 50)
            if not changes:
                return created
            for change in changes:
                created += await self._change(change)
                async with self.db.transaction() as tx:
                    await AlertStore.advance_cursor(tx, CHANGES, change.change_id)

    async def _change(self, change: VerdictChanged) -> int:
        created = 0
        channel = await self.channel()
        for draft_chunk in [c async for c in self._change_chunks(change)]:
            result = await self.writer.write(draft_chunk, now=self.clock(), channel=channel)
            created += self._count(result)
        back = [
            r.id
            for r in self.rules.for_trigger(Trigger.VERDICT_CHANGE)
            if change.new_verdict in r.resolve_when and change.old_verdict in r.change.new_verdicts
        ]
        if back:
            await self.actions.resolve_clean(back, change.expression, change.reason or change.source)
        return created

    async def _change_chunks(self, change: VerdictChanged) -> Any:
        for rule in self.rules.for_trigger(Trigger.VERDICT_CHANGE):
            if not rule.change.matches(change.new_verdict, change.old_verdict, change.source):
                continue
            start, end = window_of(rule, change.changed_at)
            clicks = [c async for c in covered_clicks(self.clicks, change.expression, start, end)]
            drafts = change_drafts(rule, change, clicks)
            for i in range(0, len(drafts), self.batch):
                yield drafts[i : i + self.batch]

    async def replay(self, since: datetime, *, apply: bool, actor: Who | None = None) -> ReplayReport:
        """Run the rules again over clicks and verdict changes since ``since``; store only with ``apply``
        (each batch written with its audit row for ``actor``)."""
        drafts: list[Draft] = []
        async for click in self.clicks.stream(ClickFilter(since=since)):
            drafts += await self._bursts(click_drafts(self.rules, click))
        for change in await self.changes.since(since):
            async for chunk in self._change_chunks(change):
                drafts += chunk
        present = await self.store.keys_present([d.key for d in drafts])
        report = ReplayReport([ReplayItem(d, d.key in present) for d in drafts])
        if apply:
            channel = await self.channel()
            new = [i.draft for i in report.new]
            for i in range(0, len(new), self.batch):
                chunk = new[i : i + self.batch]

                async def audited(tx: Executor, chunk: list[Draft] = chunk) -> None:
                    if actor is not None:
                        await audit.record(tx, actor, "alerts.replay", f"since {since.isoformat()}",
                                           f"{len(chunk)} alerts: " + ", ".join(d.key for d in chunk[:20])[:1000],
                                           at=self.clock().timestamp())

                result = await self.writer.write(chunk, now=self.clock(), channel=channel, tx_extra=audited)
                report.created += result.created
        return report
