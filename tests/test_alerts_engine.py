"""The click rules, deterministic keys, the durable cursor and two engines on one store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from shared.alerts.engine import CLICKS
from shared.clicks import ActionType, Workload
from shared.config import Settings
from shared.store.alerts import AlertFilter
from tests.alerts_harness import SECURITY_CHANNEL, CardRecorder, alerting, click, hours
from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("both_backends")  # every test here goes through the store


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"verdict": "malicious", "action": ActionType.CLICK_BLOCKED}, {"teams-malicious-click"}),
        ({"verdict": "malicious", "through": True}, {"teams-malicious-click", "clicked-through"}),
        ({"verdict": "suspicious", "through": True}, {"clicked-through"}),
        ({"verdict": "pending", "action": ActionType.URL_SCAN_IN_PROGRESS, "through": True}, {"clicked-through"}),
        ({"verdict": "suspicious", "action": ActionType.CLICK_BLOCKED}, set()),
        ({"verdict": "clean", "action": ActionType.CLICK_ALLOWED}, set()),
        ({"verdict": "malicious", "workload": Workload.EMAIL, "through": True}, {"clicked-through"}),
        ({"verdict": "malicious", "workload": Workload.EMAIL}, set()),
    ],
)
async def test_click_rules_fire_on_the_right_clicks(settings: Settings, kwargs: dict[str, Any],
                                                    expected: set[str]) -> None:
    """Each built-in click rule fires exactly on the clicks its conditions describe."""
    clock = FakeClock()
    async with alerting(settings, clock) as (services, system):
        await services.clicks.record(click(clock.now, **kwargs))
        await system.engine.process_clicks()
        alerts, _ = await system.writer.alerts.page(AlertFilter())
        assert {a.rule_id for a in alerts} == expected


async def test_view_and_click_through_make_the_two_seed_alerts_in_one_incident(settings: Settings) -> None:
    """A warning-page view and its click-through share a ReportId: two alerts, one incident, one card."""
    clock = FakeClock()
    cards = CardRecorder()
    async with alerting(settings.model_copy(update={"security_channel": SECURITY_CHANNEL}), clock,
                        cards=cards) as (services, system):
        view = click(clock.now)
        await services.clicks.record(view)
        await system.engine.process_clicks()
        clock.now += hours(0.01)
        await services.clicks.record(view.clicked_through(clock.now, "203.0.113.0", "Mozilla/5.0"))
        await system.engine.process_clicks()
        alerts, total = await system.writer.alerts.page(AlertFilter())
        assert total == 2
        assert {a.title for a in alerts} == {"User clicked a malicious link in Teams chat",
                                             "A user clicked through to a potentially malicious URL"}
        assert len({a.incident_id for a in alerts}) == 1
        assert set(cards.cards) == {f"incident:{alerts[0].incident_id}"}
        assert {channel for channel, _, _ in cards.posts} == {SECURITY_CHANNEL}


async def test_restart_and_replay_never_duplicate(settings: Settings) -> None:
    """Rewinding the cursor (a crash before it moved) re-reads the clicks but stores no second alert."""
    clock = FakeClock()
    async with alerting(settings, clock) as (services, system):
        for n in range(5):
            await services.clicks.record(click(clock.now + hours(n / 100), through=True, user=f"u{n}@contoso.com"))
        assert await system.engine.process_clicks() == 10
        await services.db.execute("UPDATE alert_cursors SET position = 0 WHERE name = ?", (CLICKS,))
        assert await system.engine.process_clicks() == 0
        report = await system.engine.replay(clock.now - hours(1), apply=True)
        assert report.created == [] and len(report.items) == 10 and all(i.exists for i in report.items)
        _, total = await system.writer.alerts.page(AlertFilter())
        assert total == 10


async def test_the_cursor_catches_up_after_downtime(settings: Settings) -> None:
    """Clicks stored while no engine ran are alerted on when one starts, from the stored cursor."""
    clock = FakeClock()
    async with alerting(settings, clock) as (services, _):
        await services.clicks.record(click(clock.now, through=True))
    async with alerting(settings, clock) as (services, system):
        assert await system.engine.process_clicks() == 2
        assert await system.writer.alerts.cursor(CLICKS) > 0


async def test_two_engines_on_one_store_store_each_alert_once(make_settings: Callable[..., Settings]) -> None:
    """Two engines (two processes' worth) reading the same clicks at once store every alert once."""
    clock = FakeClock()
    settings = make_settings()
    async with alerting(settings, clock) as (services, first), alerting(settings, clock) as (_, second):
        for n in range(40):
            await services.clicks.record(click(clock.now, through=True, user=f"u{n}@contoso.com"))
        counts = await asyncio.gather(first.engine.process_clicks(), second.engine.process_clicks(),
                                      first.engine.replay(clock.now - hours(1), apply=True))
        alerts, total = await first.writer.alerts.page(AlertFilter(top=1000))
        # Two per click, and one storm alert: forty clicks on one malicious link within a minute.
        assert total == 81 and sum(a.rule_id == "click-storm" for a in alerts) == 1
        assert counts[0] + counts[1] + len(counts[2].created) == 81


async def test_replay_dry_run_stores_nothing(settings: Settings) -> None:
    """``replay`` without apply lists what it would raise and stores nothing; with apply it stores it."""
    clock = FakeClock()
    async with alerting(settings, clock) as (services, system):
        await services.clicks.record(click(clock.now - hours(30), through=True))
        dry = await system.engine.replay(clock.now - hours(48), apply=False)
        assert len(dry.new) == 2 and dry.created == []
        assert (await system.writer.alerts.page(AlertFilter()))[1] == 0
        applied = await system.engine.replay(clock.now - hours(48), apply=True)
        assert len(applied.created) == 2
        assert (await system.writer.alerts.page(AlertFilter()))[1] == 2
