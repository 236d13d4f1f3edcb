"""An incident told in order: the Teams message, every click, verdict changes, alerts, notifications
and the actions people took, each a dated step read from the store."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.alerts.model import Alert, Incident
from shared.clicks import Click
from shared.evidence import TeamsMessageEvidence
from shared.quarantine import QuarantineRecord, State
from shared.store.alerts import AlertStore
from shared.store.clicks import ClickStore
from shared.store.database import Database
from shared.store.messages import EvidenceStore
from shared.store.outbox import Delivery, OutboxTable
from shared.store.quarantine import QuarantineStore
from shared.store.verdict_changes import VerdictChangeTable
from shared.urls import URLError, expressions

# Clicks before the first alert still belong to the story: a verdict turning malicious looks 48 hours back.
LOOK_BACK = timedelta(hours=48)


@dataclass(frozen=True, slots=True)
class Step:
    at: datetime
    kind: str  # message, quarantine, click, verdict, alert, notification, action
    title: str
    lines: tuple[tuple[str, str], ...] = ()
    link: str | None = None  # a deep link (Teams) to open
    alert_id: int | None = None


@dataclass
class Story:
    incident: Incident
    alerts: list[Alert]
    messages: list[TeamsMessageEvidence] = field(default_factory=list)
    clicks: list[Click] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    # Each message's quarantine record, by (conversation id, message id).
    quarantined: dict[tuple[str, str], QuarantineRecord] = field(default_factory=dict)

    def quarantine_of(self, alert: Alert) -> QuarantineRecord | None:
        return self.quarantined.get((alert.conversation_id or "", alert.message_id or ""))

    @property
    def urls(self) -> list[str]:
        return list(dict.fromkeys(a.url for a in self.alerts))


async def tell(db: Database, incident: Incident, alerts: list[Alert], *, now: datetime) -> Story:
    story = Story(incident, alerts)
    steps = story.steps
    evidence = EvidenceStore(db)
    seen: set[tuple[str, str]] = set()
    for alert in alerts:
        if alert.conversation_id and alert.message_id and (alert.conversation_id, alert.message_id) not in seen:
            seen.add((alert.conversation_id, alert.message_id))
            message = await evidence.get(alert.conversation_id, alert.message_id)
            record = await QuarantineStore(db).of_message(alert.conversation_id, alert.message_id)
            if record is not None:
                story.quarantined[(alert.conversation_id, alert.message_id)] = record
                steps += _quarantine_steps(record)
            if message is not None:
                story.messages.append(message)
                steps.append(_message_step(message, record))
    since = incident.first_activity - LOOK_BACK
    until = max(incident.last_activity, now) + timedelta(seconds=1)
    story.clicks = await ClickStore(db).on_urls(story.urls, since, until)
    steps += [_click_step(c) for c in story.clicks]
    steps += await _verdict_steps(db, story.urls, since)
    for alert in alerts:
        steps.append(Step(alert.created_at, "alert", f"Alert: {alert.title}",
                          (("Severity", alert.severity.value), ("Status", alert.status.value),
                           ("User", alert.account_upn or "—"), ("URL", alert.url)), alert_id=alert.id))
        steps += await _notification_steps(db, alert)
    steps += await _card_steps(db, incident.id)
    steps += await _action_steps(db, incident.id, [a.id for a in alerts])
    steps.sort(key=lambda s: s.at)
    return story


def quarantine_text(record: QuarantineRecord) -> str:
    """Where the message stands: "hidden from its readers (quarantine #3)", "failed: why"…"""
    text = {State.HIDING: "being hidden from its readers", State.HIDDEN: "hidden from its readers",
            State.RELEASING: "being released", State.RELEASED: "released to its readers",
            State.FAILED: "could not be " + ("released" if record.last_action == "release" else "hidden")}[record.state]
    if record.state_detail:
        text += f": {record.state_detail}"
    return f"{text} (quarantine #{record.id})"


def _quarantine_steps(r: QuarantineRecord) -> list[Step]:
    found = [Step(r.requested_at, "quarantine", f"Hiding asked for by {r.requested_by or 'Safe Links'}",
                  (("Reason", r.reason), ("Now", quarantine_text(r))))]
    if r.hidden_at is not None:
        found.append(Step(r.hidden_at, "quarantine", "Message hidden from its readers (Microsoft Graph)"))
    if r.released_at is not None:
        found.append(Step(r.released_at, "quarantine", f"Message released by {r.released_by or 'someone'}"))
    return found


def _message_step(m: TeamsMessageEvidence, record: QuarantineRecord | None = None) -> Step:
    where = m.channel_name or m.thread_sub_type
    if m.team_name:
        where = f"{m.team_name} / {where}"
    lines = [("Sender", " ".join(p for p in (m.sender_name or "", f"<{m.sender_upn}>" if m.sender_upn else "") if p)
              or (m.sender_id or "—")),
             ("Conversation", where), ("Text", m.snippet or "—"), ("Links", ", ".join(m.urls) or "—")]
    if m.is_external:
        lines.append(("External sender", "yes"))
    if m.deleted_at:
        lines.append(("Deleted", m.deleted_at.strftime("%Y-%m-%d %H:%M:%S")))
    if record is not None:
        lines.append(("Quarantine", quarantine_text(record)))
    return Step(m.received_at, "message", "Teams message posted", tuple(lines), link=m.web_url)


def _click_step(c: Click) -> Step:
    through = "clicked through the warning" if c.is_clicked_through else c.action_type.value
    return Step(c.timestamp, "click", f"Click by {c.account_upn or 'an unknown user'}: {through}",
                (("ActionType", c.action_type.value), ("IsClickedThrough", "true" if c.is_clicked_through else "false"),
                 ("Verdict", f"{c.verdict} ({c.verdict_source or 'no source'})"), ("URL", c.url),
                 ("ReportId", c.report_id)))


async def _verdict_steps(db: Database, urls: list[str], since: datetime) -> list[Step]:
    exprs: set[str] = set()
    for url in urls:
        try:
            exprs.update(expressions(url))
        except URLError:
            continue
    changes = await VerdictChangeTable(db).on_expressions(exprs, since)
    return [Step(c.changed_at, "verdict", f"Verdict on {c.expression}: {c.old_verdict} → {c.new_verdict}",
                 (("Source", c.source), ("Reason", c.reason or "—"), ("Threats", ",".join(c.threat_types) or "—")))
            for c in changes]


async def _notification_steps(db: Database, alert: Alert) -> list[Step]:
    rows = await OutboxTable(db).deliveries_keyed(f"alert:{alert.key}:%")
    return [_delivery(r, f"{'E-mail' if r.kind == 'email' else r.kind.capitalize()} about alert {alert.id}")
            for r in rows]


async def _card_steps(db: Database, incident_id: int) -> list[Step]:
    # The incident's card in the security channel: one outbox item per post or edit.
    rows = await OutboxTable(db).teams_deliveries_containing(f'"card_key":"incident:{incident_id}"')
    return [_delivery(r, "Alert card in the security channel") for r in rows if _card_of(r.payload, incident_id)]


def _card_of(payload: str, incident_id: int) -> bool:
    try:
        return bool(json.loads(payload).get("card_key") == f"incident:{incident_id}")
    except (ValueError, AttributeError):
        return False


def _delivery(r: Delivery, title: str) -> Step:
    at = r.done_at or r.created_at
    lines = [("Status", r.status), ("Attempts", str(r.attempts))]
    if r.last_error:
        lines.append(("Last error", r.last_error))
    return Step(datetime.fromtimestamp(float(at), UTC), "notification", title, tuple(lines))


async def _action_steps(db: Database, incident_id: int, alert_ids: list[int]) -> list[Step]:
    rows = await AlertStore(db).actions_on(incident_id, alert_ids)
    return [Step(datetime.fromtimestamp(r["at"], UTC), "action",
                 f"{r['actor_name'] or r['actor']} set {r['verb']}: {r['detail']}",
                 (("By", f"{r['actor_name'] or r['actor']} (via {r['via']})"),
                  ("On", f"alert {r['alert_id']}" if r["alert_id"] is not None else f"incident {r['incident_id']}")))
            for r in rows]
