"""The alert card for the security channel (Adaptive Card 1.5, Universal Actions).

One card per incident: it shows the incident's newest alert (who clicked what and when, the Teams
message it came from, the verdict and why) and how many alerts the incident holds. Its buttons send
``alert.*`` verbs back to the bot; the card returned for an action replaces it in place.

Almost everything on the card comes from outside (a URL, a sender's display name, the message,
a feed's reason, an analyst's comment), so every text and fact passes ``card_text`` here, in the
two builders below: an outside value can neither add a link nor be turned into one by Teams. The
only links are the card's own actions, and "Open the message" only ever points at Teams.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from shared.alerts.model import Alert, Incident
from shared.escaping import card_text
from shared.quarantine.cards import quarantine_actions, quarantine_fact, reported_who

VERBS = ("alert.resolve", "alert.classify", "alert.block", "alert.allow", "alert.assign")
_STYLE = {"high": "attention", "medium": "warning", "low": "accent", "informational": "default"}
_WORKLOAD = {"Teams": "Teams", "Email": "e-mail", "Office": "an Office document"}
_TEAMS_LINK = "https://teams.microsoft.com/l/message/"


def _text(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": card_text(text), "wrap": True, **extra}


def _facts(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {
        "type": "FactSet",
        "facts": [{"title": card_text(k), "value": card_text(v)} for k, v in pairs if v not in (None, "")],
    }


def _when(alert: Alert) -> str:
    return alert.first_activity.strftime("%Y-%m-%d %H:%M:%S UTC")


def message_link(message: dict[str, Any]) -> str | None:
    """The message's deep link in Teams; a link the evidence names that leads elsewhere is not used."""
    for key in ("safelinksWebUrl", "webUrl"):
        value = message.get(key)
        if isinstance(value, str) and value.startswith(_TEAMS_LINK) and value.isprintable() and " " not in value:
            return value
    thread, msg = message.get("threadId"), message.get("messageId")
    if thread and msg:
        return f"{_TEAMS_LINK}{quote(str(thread), safe='')}/{quote(str(msg), safe='')}"
    return None


def _sender(message: dict[str, Any]) -> str:
    sender = message.get("senderFromAddress")
    if isinstance(sender, dict):
        name, address = sender.get("displayName"), sender.get("emailAddress")
        if name and address:
            return f"{name} <{address}>"
        return str(name or address or "someone")
    return str(sender or "someone")


def _message_section(alert: Alert) -> list[dict[str, Any]]:
    message = next((e for e in alert.evidence if e.get("@odata.type", "").endswith("teamsMessageEvidence")), None)
    if message is None:
        return []
    channel = message.get("safelinksChannelName") or message.get("channelId")
    team = message.get("safelinksTeamName") or message.get("groupId")
    if channel:
        place = f"channel {channel}" + (f" in team {team}" if team else "")
    else:
        place = "group chat" if message.get("threadSubType") == "groupChat" else "chat"
    blocks: list[dict[str, Any]] = [
        _text("The Teams message it came from", weight="Bolder", spacing="Medium"),
        _facts([("From", _sender(message)), ("In", place), ("Received", message.get("receivedDateTime"))]),
    ]
    snippet = message.get("safelinksSnippet") or message.get("subject")
    if snippet:
        blocks.append(_text(f"“{snippet}”", isSubtle=True, spacing="Small"))
    link = message_link(message)
    if link:
        blocks.append(
            {
                "type": "ActionSet",
                "actions": [{"type": "Action.OpenUrl", "title": "Open the message", "url": link}],
            }
        )
    return blocks


def _user(alert: Alert) -> str:
    upn = alert.account_upn or alert.account_object_id
    account = next(
        (e.get("userAccount") or {} for e in alert.evidence if e.get("@odata.type", "").endswith("userEvidence")), {}
    )
    name = account.get("displayName")
    if name and upn and name != upn:
        return f"{name} <{upn}>"
    return upn or name or "An unknown user"


def _who(alert: Alert) -> str:
    reported = reported_who(alert)
    if reported:
        return reported
    user = _user(alert)
    click = alert.details.get("click") or {}
    did = "clicked through the warning to" if click.get("IsClickedThrough") else "clicked"
    return f"{user} {did} {alert.url} in {_WORKLOAD.get(alert.workload, alert.workload)}"


def _execute(title: str, verb: str, alert: Alert, **data: Any) -> dict[str, Any]:
    return {
        "type": "Action.Execute",
        "title": title,
        "verb": verb,
        "data": {"alert_id": alert.id, "incident_id": alert.incident_id, **data},
    }


def alert_card(alert: Alert, incident: Incident | None, *, note: str | None = None) -> dict[str, Any]:
    """The card for ``incident`` showing ``alert`` (its newest); ``note`` explains the latest change."""
    click = alert.details.get("click") or {}
    verdict = alert.details.get("verdict") or {}
    status_line = f"{alert.severity.value.capitalize()} severity · {alert.status.value}"
    if incident is not None:
        others = incident.alert_count - 1
        status_line += (
            f" · incident #{incident.id} ({incident.status.value}), {others} related alert{'s' if others != 1 else ''}"
        )
    body: list[dict[str, Any]] = [
        {
            "type": "Container",
            "style": _STYLE.get(alert.severity.value, "default"),
            "bleed": True,
            "items": [
                _text(alert.title, size="Large", weight="Bolder"),
                _text(status_line, isSubtle=True, spacing="None"),
            ],
        },
    ]
    if incident is not None:
        body.append(_text(f"Incident: {incident.title}", weight="Bolder"))
    if note:
        body.append(_text(note, color="Good" if "resolved" in note.lower() else "Accent"))
    body += [
        _text(_who(alert)),
        _facts(
            [
                ("User", _user(alert)),
                ("URL", alert.url),
                ("When", _when(alert)),
                ("Action", click.get("ActionType")),
                ("Clicked through", "yes" if click.get("IsClickedThrough") else "no"),
                ("IP address", click.get("IPAddress")),
                ("Clicks", alert.event_count if alert.event_count > 1 else None),
                quarantine_fact(alert) or ("", None),
            ]
        ),
        *_message_section(alert),
        _text("Verdict", weight="Bolder", spacing="Medium"),
        _facts(
            [
                ("Verdict", verdict.get("verdict")),
                ("Source", verdict.get("source")),
                ("Threats", ", ".join(verdict.get("threatTypes", []))),
                ("Detection", verdict.get("detectionMethod")),
                ("Why", verdict.get("reason")),
            ]
        ),
        _facts(
            [
                ("Assigned to", alert.assigned_to),
                (
                    "Classification",
                    alert.classification.value if alert.classification.value != "unknown" else None,
                ),
            ]
        ),
    ]
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "fallbackText": card_text(f"{alert.title}: {_who(alert)}"),
        "msteams": {"width": "Full"},
        "body": body,
        "actions": [
            _execute("Resolve", "alert.resolve", alert),
            {
                "type": "Action.ShowCard",
                "title": "Classify",
                "card": {
                    "type": "AdaptiveCard",
                    "version": "1.5",
                    "body": [_text("How would you classify this alert?")],
                    "actions": [
                        _execute("True positive", "alert.classify", alert, classification="truePositive"),
                        _execute(
                            "False positive",
                            "alert.classify",
                            alert,
                            classification="falsePositive",
                        ),
                    ],
                },
            },
            _execute("Block URL", "alert.block", alert),
            _execute("Allow URL (false positive)", "alert.allow", alert),
            _execute("Assign to me", "alert.assign", alert),
            *quarantine_actions(alert),
        ],
    }
