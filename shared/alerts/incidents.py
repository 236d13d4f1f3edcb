"""Correlating alerts into incidents: shared entities within a time window, a cap, a readable title.

An alert joins the most recently active open incident that shares an entity with it (the URL,
its registrable domain, the user who clicked, the message, its sender) and whose activity lies
within the correlation window; otherwise it opens a new incident. An incident holds at most
``max_alerts`` alerts (Sentinel's 150): past that a new incident takes over. Its severity is the
highest of its alerts', and its title says what happened in words ("Malicious URL clicked in
Teams by 2 users").
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.alerts.model import Severity
from shared.store.alerts import AlertStore
from shared.store.database import Executor
from shared.store.incidents import IncidentStore

_PLACES = {"Teams": "Teams", "Email": "e-mail", "Office": "Office documents"}


def entities_of(values: dict[str, Any]) -> list[tuple[str, str]]:
    """The (kind, value) pairs an alert is about; ``values`` are the alert's stored columns."""
    found: list[tuple[str, str]] = []
    if values.get("canonical_url"):
        found.append(("url", values["canonical_url"]))
    if values.get("domain"):
        found.append(("domain", values["domain"]))
    user = values.get("account_upn") or values.get("account_object_id")
    if user:
        found.append(("user", str(user).lower()))
    if values.get("message_id"):
        found.append(("message", f"{values.get('conversation_id') or ''}/{values['message_id']}"))
    if values.get("sender"):
        found.append(("sender", str(values["sender"]).lower()))
    return found


def incident_title(verdicts: Iterable[str], urls: Iterable[str], users: Iterable[str], workloads: Iterable[str]) -> str:
    """A title a person understands, from what the incident's alerts share."""
    verdict_set, url_set, user_set = set(verdicts), set(urls), {u for u in users if u}
    workload_set = set(workloads)
    places = [_PLACES[w] for w in ("Teams", "Email", "Office") if w in workload_set]
    adjective = "malicious" if "malicious" in verdict_set else "potentially malicious"
    what = f"{adjective.capitalize()} URL" if len(url_set) <= 1 else f"{len(url_set)} {adjective} URLs"
    text = f"{what} clicked"
    if places:
        text += " in " + " and ".join(places)
    if user_set:
        text += f" by {len(user_set)} user{'s' if len(user_set) != 1 else ''}"
    return text


@dataclass(frozen=True, slots=True)
class Correlator:
    window_seconds: float = 24 * 3600.0
    max_alerts: int = 150

    async def attach(self, tx: Executor, values: dict[str, Any], *, now: float) -> tuple[int, bool]:
        """Put a new alert (by its stored values) into an incident; return (incident id, newly opened)."""
        entities = entities_of(values)
        since = float(values["first_activity"]) - self.window_seconds
        incident_id = await IncidentStore.find_open(tx, entities, since, self.max_alerts)
        opened = incident_id is None
        if incident_id is None:
            incident_id = await IncidentStore.create(
                tx,
                title=values["title"],
                severity=values["severity"],
                at=now,
                first_activity=float(values["first_activity"]),
            )
        await IncidentStore.add_entities(tx, incident_id, entities)
        return incident_id, opened

    @staticmethod
    async def refresh(tx: Executor, incident_id: int, *, now: float) -> None:
        """Recompute an incident's count, severity, activity span and title from its alerts."""
        facts = await AlertStore.facts_of_incident(tx, incident_id)
        if not facts:
            return
        severity = max((Severity(a.severity) for a in facts), key=lambda s: s.rank)
        verdicts = [json.loads(a.details).get("verdict", {}).get("verdict", "") for a in facts]
        title = incident_title(
            verdicts,
            (a.url for a in facts),
            ((a.account_upn or a.account_object_id or "").lower() for a in facts),
            (a.workload for a in facts),
        )
        fields: dict[str, Any] = {
            "alert_count": len(facts),
            "severity": severity.value,
            "title": title,
            "first_activity": min(a.first_activity for a in facts),
            "last_activity": max(a.last_activity for a in facts),
            "updated_at": now,
        }
        if all(a.status == "resolved" for a in facts):
            fields.update(status="resolved", resolved_at=now)
        elif await IncidentStore.status(tx, incident_id) == "resolved":
            fields.update(status="active", resolved_at=None)
        await IncidentStore.set_fields(tx, incident_id, fields)
