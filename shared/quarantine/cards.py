"""What the alert card shows of a quarantine: the message's state, and the Hide / Release buttons.

The alert keeps ``details["quarantine"]``: ``available`` (quarantine is on), and once a record
exists its ``id``, ``state``, who asked and ``why`` it failed. "Release message" shows while the
message is hidden; "Hide message" on a reported message that is not hidden, when quarantine is on.
Both are for administrators only (checked when pressed).
"""

from __future__ import annotations

from typing import Any

from shared.alerts.model import Alert

RELEASE_VERB = "quarantine.release"
HIDE_VERB = "quarantine.hide"
VERBS = (RELEASE_VERB, HIDE_VERB)
REPORTED_RULE = "teams-message-reported"
_SHOWN = {
    "hiding": "being hidden from its readers",
    "hidden": "hidden from its readers",
    "releasing": "being released",
    "released": "released",
    "failed": "not hidden",
}


def quarantine_of(alert: Alert) -> dict[str, Any]:
    found = alert.details.get("quarantine")
    return found if isinstance(found, dict) else {}


def quarantine_fact(alert: Alert) -> tuple[str, str] | None:
    """("Message", "hidden from its readers by Safe Links") or None when nothing happened to the message."""
    q = quarantine_of(alert)
    state = q.get("state")
    if not state:
        return None
    text = _SHOWN.get(str(state), str(state))
    by = q.get("released_by") if state in ("released", "releasing") else q.get("requested_by")
    if by and state != "failed":
        text += f" by {by}"
    if state == "failed" and q.get("why"):
        text += f": {q['why']}"
    return "Message", text


def offered_verb(rule_id: str, state: str | None, available: bool) -> str | None:
    """The button an alert offers on its message: release while hidden, hide a reported message when
    quarantine is on and nothing has refused it yet (the card and the console ask the same question)."""
    if state in ("hiding", "hidden"):
        return RELEASE_VERB
    if available and rule_id == REPORTED_RULE and state != "failed":
        return HIDE_VERB
    return None


def quarantine_actions(alert: Alert) -> list[dict[str, Any]]:
    q = quarantine_of(alert)
    data = {"alert_id": alert.id, "incident_id": alert.incident_id}
    verb = offered_verb(alert.rule_id, q.get("state"), bool(q.get("available")))
    if verb is None:
        return []
    title = "Release message" if verb == RELEASE_VERB else "Hide message"
    return [{"type": "Action.Execute", "title": title, "verb": verb, "data": data}]


def reported_who(alert: Alert) -> str | None:
    """The card's headline for a reported message (None for other alerts)."""
    report = alert.details.get("report")
    if alert.rule_id != REPORTED_RULE or not isinstance(report, dict):
        return None
    reporter = report.get("reporter") or {}
    sender = report.get("sender") or {}
    who = reporter.get("name") or reporter.get("upn") or "A user"
    whom = sender.get("name") or sender.get("upn") or "someone"
    return f"{who} reported a Teams message from {whom} as a security risk"
