"""Rules as data: the built-ins, a rules file over them, schema errors that name the rule and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.alerts.errors import RulesError
from shared.alerts.rules import Trigger, load_rules, parse_duration
from shared.config import Settings
from shared.store.alerts import AlertFilter
from tests.alerts_harness import alerting, click, hours
from tests.conftest import FakeClock


def test_builtins_work_with_no_file() -> None:
    """With no rules file the three Defender rules are there with their titles and High severity, and the storm rule."""
    rules = load_rules(None)
    defender = {r.title: r.severity.value for r in rules.rules if r.id != "click-storm"}
    assert defender == {
        "A user clicked through to a potentially malicious URL": "high",
        "User clicked a malicious link in Teams chat": "high",
        "A potentially malicious URL click was detected": "high",
    }
    storm = rules.get("click-storm")
    assert storm is not None and storm.severity.value == "medium" and storm.volume is not None
    (lookback,) = rules.for_trigger(Trigger.VERDICT_CHANGE)
    assert lookback.lookback_seconds == 48 * 3600 and lookback.aggregation is None


def test_settings_supply_default_recipients(make_settings: object) -> None:
    """E-mail recipients, the daily limit and webhooks come from settings unless a rule names its own."""
    settings = make_settings(alert_email_to="soc@contoso.com, ir@contoso.com", alert_email_daily_limit=5,  # type: ignore[operator]
                             alert_webhook_urls="https://siem.contoso.com/hook", alert_webhook_secret="k")
    rule = load_rules(None, settings).rules[0]
    assert rule.notifications.email_to == ("soc@contoso.com", "ir@contoso.com")
    assert rule.notifications.email_daily_limit == 5
    assert [(h.url, h.secret) for h in rule.notifications.webhooks] == [("https://siem.contoso.com/hook", "k")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules:\n  - id: clicked-through\n    severity: urgent\n",
         "rule clicked-through: severity: 'urgent' is not one of"),
        ("rules:\n  - id: x1\n    title: T\n    severity: low\n    trigger: click\n    conditions: {workload: [Fax]}\n",
         "rule x1: conditions.workload.0: 'Fax' is not one of"),
        ("rules:\n  - id: x2\n    title: T\n", "rule x2: severity, trigger: required for a new rule"),
        ("rules:\n  - id: x3\n    title: T\n    severity: low\n    trigger: click\n    lookback: soon\n",
         "rule x3: lookback: 'soon' is not valid"),
        ("rules:\n  - id: x4\n    title: T\n    severity: low\n    trigger: click\n"
         "    conditions: {new_verdict: [malicious]}\n",
         "rule x4: conditions: new_verdict and source apply to verdict_change rules"),
        ("rules:\n  - title: no id\n", "rule #1: (document): 'id' is a required property"),
        ("rules: [", "not valid YAML"),
        ("other: 1\n", "(document): Additional properties are not allowed ('other' was unexpected)"),
        ("rules:\n  - id: x5\n    notifications: {email: {recipients: [not-an-address]}}\n",
         "rule x5: notifications.email"),
    ],
)
def test_bad_rules_files_name_rule_and_field(tmp_path: Path, text: str, message: str) -> None:
    """A rules file the schema refuses raises RulesError naming the file, the rule and the field."""
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert message in str(caught.value) and str(path) in str(caught.value)


@pytest.mark.parametrize(("value", "seconds"), [(90, 90.0), ("90s", 90.0), ("15m", 900.0), ("48h", 172800.0),
                                                ("7d", 604800.0), ("1.5h", 5400.0)])
def test_durations(value: str | int, seconds: float) -> None:
    """Durations are seconds or a number with s, m, h or d."""
    assert parse_duration(value) == seconds


@pytest.mark.usefixtures("both_backends")
async def test_aggregation_folds_and_suppression_drops(settings: Settings, tmp_path: Path) -> None:
    """Aggregation adds later events to the open alert; suppression drops them; both per group and window."""
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - id: clicked-through\n    aggregation: {window: 1h, by: [user]}\n"
        "  - id: teams-malicious-click\n    suppression: {for: 1h, by: [url]}\n"
    )
    clock = FakeClock()
    async with alerting(settings, clock, rules=load_rules(path)) as (services, system):
        for n, user in enumerate(["adele@contoso.com", "adele@contoso.com", "megan@contoso.com"]):
            await services.clicks.record(click(clock.now + hours(n / 10), through=True, user=user))
        await services.clicks.record(click(clock.now + hours(2), through=True, user="adele@contoso.com"))
        await system.engine.process_clicks()
        through, _ = await system.writer.alerts.page(AlertFilter(rule_id="clicked-through"))
        teams, _ = await system.writer.alerts.page(AlertFilter(rule_id="teams-malicious-click"))
        assert sorted(a.event_count for a in through) == [1, 1, 2]  # adele's two folded; 2 h later a new one
        assert len(teams) == 2  # one per hour-long suppression window of the URL
        events = await services.db.fetchall("SELECT suppressed FROM alert_events")
        assert len(events) == 8 and sum(bool(e["suppressed"]) for e in events) == 2
