"""The 48-hour look-back on a verdict change, its coverage rules, grouping, and the way back to clean."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.alerts.model import AlertStatus
from shared.clicks import ActionType
from shared.config import Settings
from shared.store.alerts import AlertFilter
from shared.verdicts import Verdict
from tests.alerts_harness import SECURITY_CHANNEL, CardRecorder, alerting, click, hours
from tests.conftest import FakeClock

pytestmark = pytest.mark.usefixtures("both_backends")  # every test here goes through the store

RULE = "malicious-url-click"


@pytest.mark.parametrize(
    ("verdict_on", "clicked_url", "hours_before", "alerted"),
    [
        ("contoso-phish.com", "https://login.contoso-phish.com/signin", 1, True),
        ("contoso-phish.com", "https://contoso-phish.com/", 47.9, True),
        ("contoso-phish.com", "https://login.contoso-phish.com/signin", 49, False),
        ("contoso-phish.com", "https://login.contoso-phish.com/signin", -1, False),
        ("login.contoso-phish.com/signin", "https://login.contoso-phish.com/signin", 2, True),
        ("login.contoso-phish.com/signin", "https://login.contoso-phish.com/other", 2, False),
        ("login.contoso-phish.com/docs/", "https://login.contoso-phish.com/docs/a/b.pdf", 2, True),
        ("contoso-phish.com", "https://notcontoso-phish.com/", 2, False),
        ("contoso-phish.com", "https://contoso-phish.com.evil.net/", 2, False),
    ],
)
async def test_lookback_window_and_coverage(settings: Settings, verdict_on: str, clicked_url: str,
                                            hours_before: float, alerted: bool) -> None:
    """A verdict turning malicious alerts clicks its expression covers in the 48 hours before it, only those."""
    clock = FakeClock()
    async with alerting(settings, clock) as (services, system):
        await services.clicks.record(click(clock.now - hours(hours_before), url=clicked_url, verdict="clean",
                                           action=ActionType.CLICK_ALLOWED))
        await system.engine.process_clicks()
        await services.admin_verdicts.set(verdict_on, Verdict.MALICIOUS, reason="phishing kit",
                                          now=clock.now.timestamp())
        created = await system.engine.process_changes()
        alerts, _ = await system.writer.alerts.page(AlertFilter(rule_id=RULE))
        assert (created, len(alerts)) == ((1, 1) if alerted else (0, 0))
        if alerted:
            assert alerts[0].title == "A potentially malicious URL click was detected"
            assert alerts[0].details["verdict"]["source"] == "admin"
            assert alerts[0].key.startswith(f"{RULE}:")


async def test_one_alert_per_user_and_message_never_aggregated(settings: Settings) -> None:
    """Clicks group by user and message: repeat clicks of one user on one message make one alert."""
    clock = FakeClock()
    async with alerting(settings, clock) as (services, system):
        plan = [("adele@contoso.com", "m1"), ("adele@contoso.com", "m1"), ("adele@contoso.com", "m2"),
                ("megan@contoso.com", "m1")]
        for n, (user, message) in enumerate(plan):
            await services.clicks.record(click(clock.now - hours(5 + n), user=user, message=message,
                                               verdict="clean", action=ActionType.CLICK_ALLOWED))
        await services.admin_verdicts.set("contoso-phish.com", Verdict.MALICIOUS, now=clock.now.timestamp())
        assert await system.engine.process_changes() == 3
        alerts, _ = await system.writer.alerts.page(AlertFilter(rule_id=RULE))
        assert sorted(a.event_count for a in alerts) == [1, 1, 2]
        assert await system.engine.process_changes() == 0


async def test_clean_again_resolves_the_lookback_alerts_and_says_so(settings: Settings) -> None:
    """When the verdict returns from malicious to clean, its open look-back alerts resolve with a note."""
    clock = FakeClock()
    cards = CardRecorder()
    async with alerting(settings.model_copy(update={"security_channel": SECURITY_CHANNEL}), clock,
                        cards=cards) as (services, system):
        await services.clicks.record(click(clock.now - hours(3), verdict="clean", action=ActionType.CLICK_ALLOWED))
        await services.admin_verdicts.set("contoso-phish.com", Verdict.MALICIOUS, now=clock.now.timestamp())
        await system.engine.process_changes()
        clock.now += timedelta(hours=1)
        await services.admin_verdicts.set("contoso-phish.com", Verdict.CLEAN, reason="vendor confirmed benign",
                                          now=clock.now.timestamp())
        await system.engine.process_changes()
        alerts, _ = await system.writer.alerts.page(AlertFilter(rule_id=RULE))
        assert [a.status for a in alerts] == [AlertStatus.RESOLVED]
        assert "clean again" in alerts[0].comments[-1].comment
        card = cards.posts[-1][2]
        assert any("clean again" in block.get("text", "") for block in card["body"])
        incident = await system.writer.incidents.get(alerts[0].incident_id or 0)
        assert incident is not None and incident.status.value == "resolved"


async def test_a_second_change_to_malicious_is_a_new_identification(settings: Settings) -> None:
    """Malicious → clean → malicious again is a second verdict change with its own alerts (own keys)."""
    clock = FakeClock()
    async with alerting(settings, clock) as (services, system):
        await services.clicks.record(click(clock.now - hours(3), verdict="clean", action=ActionType.CLICK_ALLOWED))
        for verdict in (Verdict.MALICIOUS, Verdict.CLEAN, Verdict.MALICIOUS):
            clock.now += timedelta(minutes=10)
            await services.admin_verdicts.set("contoso-phish.com", verdict, now=clock.now.timestamp())
            await system.engine.process_changes()
        alerts, _ = await system.writer.alerts.page(AlertFilter(rule_id=RULE))
        assert len(alerts) == 2 and len({a.change_id for a in alerts}) == 2
