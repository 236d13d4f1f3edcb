"""Alerts and incidents: filtered lists, the incident's story with its actions, Graph JSON exports."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from console.filters import PAGE_SIZE, FilterError, choice, moment, page_number, text
from console.guard import SESSION_KEY, changer, viewer
from console.render import HTML_HEADERS, not_found, see_other
from console.state import CONSOLE
from console.story import Story, quarantine_text, tell
from safelinks.api import ALERTING
from safelinks.quarantine import QUARANTINE, hide_alert_message, release_alert_message
from shared.alerts.actions import Actor, Changes
from shared.alerts.errors import AlertError
from shared.alerts.graph import alert_json, incident_json
from shared.alerts.model import Alert, AlertStatus, Classification, IncidentStatus, Severity
from shared.quarantine import QuarantineError
from shared.quarantine.cards import RELEASE_VERB, offered_verb
from shared.store.alerts import AlertFilter, AlertStore
from shared.store.incidents import IncidentFilter, IncidentStore
from shared.urllists.tenant_list import TablAction

CLASSIFICATIONS = [c.value for c in Classification]


@dataclass(frozen=True, slots=True)
class ConsoleActor(Actor):
    """A console user as the changes they make record them: with their UPN where their sign-in gave one
    (``shared.store.audit.Principal``)."""

    upn: str = ""


def actor_of(request: web.Request) -> Actor:
    session = request[SESSION_KEY]
    return ConsoleActor(session.user_id, session.user_name, via="console", upn=session.upn)


def _common(request: web.Request, status_kind: Any) -> dict[str, Any]:
    now = request.config_dict[CONSOLE].clock()
    page = page_number(request)
    return {
        "status": choice(request, "status", status_kind),
        "severity": choice(request, "severity", Severity),
        "title": text(request, "title"),
        "user": text(request, "user"),
        "url": text(request, "url"),
        "since": moment(request, "since", now),
        "until": moment(request, "until", now),
        "top": PAGE_SIZE,
        "skip": (page - 1) * PAGE_SIZE,
    }


async def _listing(request: web.Request, template: str, status_kind: Any, make: Any,
                   store: AlertStore | IncidentStore) -> web.Response:
    """A filtered page of alerts or incidents; a filter the store cannot use is answered 400 with why."""
    console = request.config_dict[CONSOLE]
    context: dict[str, Any] = {"statuses": list(status_kind), "severities": list(Severity)}
    try:
        flt = make(**_common(request, status_kind))
    except FilterError as exc:
        return console.templates.page(template, request, status=400, error=str(exc), items=[], total=0, page=1,
                                      pages=1, **context)
    items, total = await store.page(flt)
    return console.templates.page(template, request, error=None, items=items, total=total,
                                  page=flt.skip // PAGE_SIZE + 1, pages=max(1, -(-total // PAGE_SIZE)), **context)


@viewer
async def alerts_page(request: web.Request) -> web.StreamResponse:
    writer = request.config_dict[ALERTING].writer
    return await _listing(request, "alerts.html", AlertStatus, AlertFilter, writer.alerts)


@viewer
async def incidents_page(request: web.Request) -> web.StreamResponse:
    writer = request.config_dict[ALERTING].writer
    return await _listing(request, "incidents.html", IncidentStatus, IncidentFilter, writer.incidents)


def _id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise not_found()
    return int(raw)


async def _story_page(request: web.Request, incident_id: int, *, status: int = 200,
                      error: str | None = None, done: str | None = None) -> web.StreamResponse:
    console, system = request.config_dict[CONSOLE], request.config_dict[ALERTING]
    incident = await system.writer.incidents.get(incident_id)
    if incident is None:
        return console.templates.page("refused.html", request, status=404, title="No such incident",
                                      message=f"There is no incident {incident_id}.")
    alerts = await system.writer.alerts.of_incident(incident_id)
    story = await tell(console.services.db, incident, alerts, now=console.clock())
    return console.templates.page("incident.html", request, status=status, story=story, error=error,
                                  done=done, classifications=CLASSIFICATIONS,
                                  offers=_message_offers(request, story), quarantine_text=quarantine_text)


def _message_offers(request: web.Request, story: Story) -> dict[int, str]:
    """Per alert, the message button its card would offer ("release" / "hide"), by the card's own rule."""
    quarantine = request.config_dict.get(QUARANTINE)
    enabled = quarantine is not None and quarantine.enabled
    offers: dict[int, str] = {}
    for alert in story.alerts:
        if not alert.conversation_id or not alert.message_id:
            continue
        record = story.quarantine_of(alert)
        verb = offered_verb(alert.rule_id, record.state.value if record else None, enabled)
        if verb is not None:
            offers[alert.id] = "release" if verb == RELEASE_VERB else "hide"
    return offers


@viewer
async def incident_page(request: web.Request) -> web.StreamResponse:
    return await _story_page(request, _id(request), done=done_text(request.query.get("done")))


@viewer
async def alert_page(request: web.Request) -> web.StreamResponse:
    """An alert lives in its incident's story: go there, to the alert."""
    system = request.config_dict[ALERTING]
    alert = await system.writer.alerts.get(_id(request))
    if alert is None or alert.incident_id is None:
        raise not_found()
    return see_other(f"/console/incidents/{alert.incident_id}#alert-{alert.id}")


_DONE = {"resolve": "Incident resolved.", "classify": "Classification saved.", "assign": "Assignment saved.",
         "block": "URL blocked.", "allow": "URL allowed; the alert is resolved as a false positive.",
         "release_message": "Release asked for: a worker asks Microsoft Graph to show the message again.",
         "hide_message": "Hiding asked for: a worker asks Microsoft Graph to hide the message from its readers.",
         "release_message_unchanged": "Nothing to do: the message is already released or being released; "
                                      "Microsoft Graph is not asked again.",
         "hide_message_unchanged": "Nothing to do: the message is already hidden or being hidden; "
                                   "Microsoft Graph is not asked again."}


@changer()
async def incident_action(request: web.Request) -> web.StreamResponse:
    system = request.config_dict[ALERTING]
    incident_id = _id(request)
    form = await request.post()
    do = str(form.get("do", ""))
    actor = actor_of(request)
    comment = str(form.get("comment", "")).strip()[:2000] or None
    try:
        if do == "resolve":
            await system.actions.update_incident(incident_id, Changes(status="resolved", comment=comment), actor)
        elif do == "classify":
            await system.actions.update_incident(
                incident_id, Changes(classification=str(form.get("classification", "")), comment=comment), actor)
        elif do == "assign":
            who = str(form.get("assigned_to", "")).strip()[:200]
            await system.actions.update_incident(
                incident_id, Changes(status="inProgress", assigned_to=who or actor.name or actor.id), actor)
        elif do in ("block", "allow", "release_message", "hide_message"):
            alert_id = str(form.get("alert_id", ""))
            known = alert_id.isdigit() and len(alert_id) <= 18
            alert = await system.writer.alerts.get(int(alert_id)) if known else None
            if alert is None or alert.incident_id != incident_id:
                raise AlertError("pick one of this incident's alerts")
            if do in ("block", "allow"):
                await system.actions.set_url_list(alert.id, TablAction(do), actor)
            elif not await _quarantine_action(request, do, alert, actor):
                do += "_unchanged"
        else:
            raise AlertError("unknown action")
    except (AlertError, QuarantineError) as exc:
        return await _story_page(request, incident_id, status=400, error=str(exc))
    return see_other(f"/console/incidents/{incident_id}?done={do}")


async def _quarantine_action(request: web.Request, do: str, alert: Alert, actor: Actor) -> bool:
    """Release or hide the alert's message through the service the card and the CLI use; False when the
    message already was (or was being) so, and nothing was asked."""
    quarantine = request.config_dict.get(QUARANTINE)
    if quarantine is None or not quarantine.enabled:
        raise QuarantineError("quarantine is off (SAFELINKS_TEAMS_QUARANTINE)")
    if do == "release_message":
        return (await release_alert_message(quarantine, alert, actor)).changed
    return (await hide_alert_message(quarantine, request.config_dict[ALERTING], alert, actor)).changed


def json_download(document: dict[str, Any], name: str) -> web.Response:
    headers = HTML_HEADERS.copy()
    headers["Content-Type"] = "application/json"
    headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return web.Response(body=json.dumps(document, indent=2).encode("utf-8"), headers=headers)


@viewer
async def incident_export(request: web.Request) -> web.StreamResponse:
    console, system = request.config_dict[CONSOLE], request.config_dict[ALERTING]
    incident = await system.writer.incidents.get(_id(request))
    if incident is None:
        raise not_found()
    alerts = await system.writer.alerts.of_incident(incident.id)
    document = incident_json(incident, alerts, public_url=console.services.settings.public_url)
    return json_download(document, f"incident-{incident.id}.json")


@viewer
async def alert_export(request: web.Request) -> web.StreamResponse:
    console, system = request.config_dict[CONSOLE], request.config_dict[ALERTING]
    alert = await system.writer.alerts.get(_id(request))
    if alert is None:
        raise not_found()
    return json_download(alert_json(alert, public_url=console.services.settings.public_url), f"alert-{alert.id}.json")


def done_text(key: str | None) -> str | None:
    return _DONE.get(key or "")
