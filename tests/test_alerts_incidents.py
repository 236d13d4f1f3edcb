"""Incidents: correlation on shared entities within the window, the cap, severity, titles, Graph shapes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from shared.alerts.graph import alert_json, incident_json
from shared.alerts.incidents import incident_title
from shared.alerts.rules import load_rules
from shared.clicks import ActionType, Workload
from shared.config import Settings
from shared.store.alerts import AlertFilter
from shared.store.incidents import IncidentFilter
from tests.alerts_harness import alerting, click, hours
from tests.conftest import FakeClock


@pytest.mark.parametrize(
    ("second", "same_incident"),
    [
        ({"user": "megan@contoso.com", "message": "m9", "sender": "x@fabrikam.com"}, True),  # same URL
        ({"url": "https://other.contoso-phish.com/x", "message": "m9", "sender": "x@fabrikam.com",
          "user": "megan@contoso.com"}, True),  # same registrable domain
        ({"url": "https://evil.example.net/", "message": "m9", "sender": "x@fabrikam.com"}, True),  # same user
        ({"url": "https://evil.example.net/", "user": "megan@contoso.com", "sender": "x@fabrikam.com",
          "message": "m1"}, True),  # same message
        ({"url": "https://evil.example.net/", "user": "megan@contoso.com", "message": "m9"}, True),  # sender
        ({"url": "https://evil.example.net/", "user": "megan@contoso.com", "message": "m9",
          "sender": "x@fabrikam.com"}, False),  # nothing shared
    ],
)
@pytest.mark.usefixtures("both_backends")
async def test_alerts_sharing_an_entity_share_an_incident(settings: Settings, second: dict[str, str],
                                                          same_incident: bool) -> None:
    """An alert joins the open incident it shares a URL, domain, user, message or sender with."""
    clock = FakeClock()
    async with alerting(settings, clock) as (services, system):
        await services.clicks.record(click(clock.now, through=True, message="m1"))
        await services.clicks.record(click(clock.now + hours(1), through=True, **second))  # type: ignore[arg-type]
        await system.engine.process_clicks()
        alerts, _ = await system.writer.alerts.page(AlertFilter(rule_id="clicked-through"))
        assert (len({a.incident_id for a in alerts}) == 1) is same_incident


@pytest.mark.usefixtures("both_backends")
async def test_outside_the_window_opens_a_new_incident(make_settings: Callable[..., Settings]) -> None:
    """Alerts more than the correlation window apart open separate incidents."""
    clock = FakeClock()
    async with alerting(make_settings(incident_window_hours=2), clock) as (services, system):
        await services.clicks.record(click(clock.now, through=True))
        # Another user: the same user's repeat would fold into the alert still open.
        await services.clicks.record(click(clock.now + hours(3), through=True, user="megan@contoso.com"))
        await system.engine.process_clicks()
        _, total = await system.writer.incidents.page(IncidentFilter())
        assert total == 2


@pytest.mark.usefixtures("both_backends")
async def test_a_full_incident_hands_over_to_a_new_one(make_settings: Callable[..., Settings]) -> None:
    """At the alert cap a new incident takes over, and later alerts join the new one."""
    clock = FakeClock()
    async with alerting(make_settings(incident_max_alerts=4), clock) as (services, system):
        for n in range(5):
            await services.clicks.record(click(clock.now + hours(n / 60), through=True, user=f"u{n}@contoso.com"))
        await system.engine.process_clicks()
        incidents, _ = await system.writer.incidents.page(IncidentFilter())
        assert sorted(i.alert_count for i in incidents) == [2, 4, 4]  # ten alerts: two per click


@pytest.mark.usefixtures("both_backends")
async def test_incident_title_severity_and_mixed_workloads(settings: Settings, tmp_path: Path) -> None:
    """Severity is the highest alert's; e-mail and Teams clicks on one URL correlate; the title says so."""
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text("rules:\n  - id: teams-malicious-click\n    severity: medium\n")
    clock = FakeClock()
    async with alerting(settings, clock, rules=load_rules(rules_file)) as (services, system):
        await services.clicks.record(click(clock.now, user="adele@contoso.com"))
        _, total = await system.writer.incidents.page(IncidentFilter())
        await system.engine.process_clicks()
        incidents, _ = await system.writer.incidents.page(IncidentFilter())
        assert incidents[0].severity.value == "medium"
        await services.clicks.record(click(clock.now, user="megan@contoso.com", workload=Workload.EMAIL,
                                           through=True, message="<msg@fabrikam.com>"))
        await system.engine.process_clicks()
        incidents, total = await system.writer.incidents.page(IncidentFilter())
        assert total == 1
        assert incidents[0].severity.value == "high"
        assert incidents[0].title == "Malicious URL clicked in Teams and e-mail by 2 users"


@pytest.mark.parametrize(
    ("verdicts", "urls", "users", "workloads", "title"),
    [
        (["malicious"], ["u1"], ["a"], ["Teams"], "Malicious URL clicked in Teams by 1 user"),
        (["malicious", "malicious"], ["u1"], ["a", "b"], ["Teams"], "Malicious URL clicked in Teams by 2 users"),
        (["pending"], ["u1", "u2"], ["a"], ["Email"], "2 potentially malicious URLs clicked in e-mail by 1 user"),
        (["malicious"], ["u1"], [""], ["Teams"], "Malicious URL clicked in Teams"),
    ],
)
def test_incident_titles(verdicts: list[str], urls: list[str], users: list[str], workloads: list[str],
                         title: str) -> None:
    """Incident titles say what was clicked, where, and by how many people."""
    assert incident_title(verdicts, urls, users, workloads) == title


def _graph_schema() -> dict[str, object]:
    # The parts of Graph's security alert/incident schemas (api-evangelist copies) we promise to honour.
    enums = {
        "severity": ["unknown", "informational", "low", "medium", "high", "unknownFutureValue"],
        "alert_status": ["unknown", "new", "inProgress", "resolved", "unknownFutureValue"],
        "incident_status": ["active", "resolved", "inProgress", "redirected", "unknownFutureValue",
                            "awaitingAction"],
        "classification": ["unknown", "falsePositive", "truePositive", "informationalExpectedActivity",
                           "unknownFutureValue"],
    }
    return enums


@pytest.mark.usefixtures("both_backends")
async def test_graph_shapes(settings: Settings) -> None:
    """Alerts and incidents export with Graph's field names, enums and evidence types."""
    clock = FakeClock()
    async with alerting(settings, clock) as (services, system):
        await services.clicks.record(click(clock.now, through=True, action=ActionType.CLICK_BLOCKED))
        await system.engine.process_clicks()
        alerts, _ = await system.writer.alerts.page(AlertFilter())
        alert = alert_json(alerts[0], public_url="https://sl.contoso.com")
        incident = await system.writer.incidents.get(alerts[0].incident_id or 0)
        assert incident is not None
        inc = incident_json(incident, alerts, public_url="https://sl.contoso.com")
    enums = _graph_schema()
    schema = {
        "type": "object",
        "required": ["id", "providerAlertId", "incidentId", "status", "severity", "classification", "title",
                     "createdDateTime", "evidence", "firstActivityDateTime", "lastActivityDateTime"],
        "properties": {
            "severity": {"enum": enums["severity"]},
            "status": {"enum": enums["alert_status"]},
            "classification": {"enum": enums["classification"]},
            "createdDateTime": {"type": "string", "pattern": r"Z$"},
            "evidence": {"type": "array", "items": {"type": "object", "required": ["@odata.type", "verdict",
                                                                                  "remediationStatus", "roles"]}},
        },
    }
    jsonschema.validate(alert, schema)
    kinds = {e["@odata.type"].rsplit(".", 1)[1]: e for e in alert["evidence"]}
    assert set(kinds) == {"urlEvidence", "userEvidence", "teamsMessageEvidence", "ipEvidence"}
    assert kinds["userEvidence"]["userAccount"]["userPrincipalName"] == "adele@contoso.com"
    assert kinds["userEvidence"]["userAccount"]["azureAdUserId"] == "aad-adele"
    assert kinds["teamsMessageEvidence"]["messageId"] == "1700000000001"
    assert kinds["urlEvidence"]["verdict"] == "malicious"
    assert alert["additionalData"]["click"]["ActionType"] == "ClickBlocked"
    assert alert["additionalData"]["verdict"]["source"] == "admin"
    assert inc["status"] in enums["incident_status"] and inc["displayName"].startswith("Malicious URL")
    assert len(inc["alerts"]) == 2
    json.dumps(inc)
