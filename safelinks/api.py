"""The REST API (``/api/v1``): alerts and incidents in Graph's shapes, and click ingestion.

Every route wants ``Authorization: Bearer <token>`` with one of ``SAFELINKS_API_TOKENS``. Listings
page like Graph (``$top``, ``$skip``, ``@odata.count``, ``@odata.nextLink``) and filter by
``status``, ``severity`` and creation time (``since``/``until``: ISO 8601, or a duration back from
now such as ``24h`` or ``7d``). Bad input is answered 400 with the reason, as JSON.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from shared.alerts.actions import Actor, Changes
from shared.alerts.errors import AlertError, InvalidChange, NotFound
from shared.alerts.graph import alert_json, incident_json
from shared.alerts.ingest import ClickRecordError, click_from_record, records_of
from shared.alerts.model import AlertStatus, IncidentStatus, Severity, parse_enum
from shared.alerts.rules import parse_duration
from shared.alerts.service import Alerting
from shared.events import ClickRecorded
from shared.services import SERVICES, Services
from shared.store import DuplicateKey
from shared.store.alerts import AlertFilter
from shared.store.incidents import IncidentFilter

log = logging.getLogger("safelinks.api")
ALERTING: web.AppKey[Alerting] = web.AppKey("alerting", Alerting)
MAX_TOP = 500
_PATCH_FIELDS = {"status", "classification", "determination", "assignedTo", "comment"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _guarded(handler: Handler) -> Handler:
    """The token check and the error answers, wrapped around each API handler.

    A wrapper rather than a middleware: any middleware, even on a sub-application, makes aiohttp run
    its middleware machinery on every request of the whole server, the click path included.
    """

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        return await _api_errors(request, handler)

    return guarded


async def _api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    services = request.config_dict[SERVICES]
    token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    known = [t.get_secret_value() for t in services.settings.api_tokens]
    if not token or not any(hmac.compare_digest(token, k) for k in known):
        return _error(401, "Unauthorized", "a valid API token is required (Authorization: Bearer <token>)")
    try:
        return await handler(request)
    except NotFound as exc:
        return _error(404, "NotFound", str(exc))
    except (InvalidChange, ClickRecordError) as exc:
        return _error(400, "BadRequest", str(exc))
    except AlertError as exc:
        return _error(400, "BadRequest", str(exc))


def _when(value: str, now: datetime, name: str) -> datetime:
    try:
        return now - timedelta(seconds=parse_duration(value))
    except AlertError:
        pass
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidChange(f"{name}: use ISO 8601 (2026-11-01T12:00:00Z) or a duration (24h, 7d)") from None
    return at if at.tzinfo else at.replace(tzinfo=now.tzinfo)


def _int(request: web.Request, *names: str, default: int, limit: int | None = None) -> int:
    for name in names:
        raw = request.query.get(name)
        if raw is None:
            continue
        if not raw.isdigit():
            raise InvalidChange(f"{name} must be a whole number")
        value = int(raw)
        return min(value, limit) if limit is not None else value
    return default


def _common(request: web.Request, status_kind: Any) -> dict[str, Any]:
    now = request.config_dict[SERVICES].clock()
    q = request.query
    found: dict[str, Any] = {
        "top": max(1, _int(request, "$top", "top", default=100, limit=MAX_TOP)),
        "skip": _int(request, "$skip", "skip", default=0),
    }
    if q.get("status"):
        found["status"] = parse_enum(status_kind, q["status"], "status").value
    if q.get("severity"):
        found["severity"] = Severity.parse(q["severity"]).value
    if q.get("since"):
        found["since"] = _when(q["since"], now, "since")
    if q.get("until"):
        found["until"] = _when(q["until"], now, "until")
    return found


def _page(request: web.Request, items: list[dict[str, Any]], total: int, top: int, skip: int) -> web.Response:
    body: dict[str, Any] = {"@odata.count": total, "value": items}
    if skip + len(items) < total:
        query = dict(request.query)
        query["$skip"] = str(skip + top)
        query["$top"] = str(top)
        body["@odata.nextLink"] = str(request.url.with_query(query))
    return web.json_response(body)


def _id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit():
        raise NotFound(f"no such id {raw!r}")
    return int(raw)


async def _changes(request: web.Request) -> Changes:
    try:
        body = await request.json()
    except json.JSONDecodeError:
        raise InvalidChange("the body must be JSON") from None
    if not isinstance(body, dict):
        raise InvalidChange("the body must be a JSON object")
    unknown = set(body) - _PATCH_FIELDS
    if unknown:
        raise InvalidChange(f"cannot change {', '.join(sorted(unknown))}: use {', '.join(sorted(_PATCH_FIELDS))}")
    for name, value in body.items():
        if not isinstance(value, str):
            raise InvalidChange(f"{name} must be a string")
    return Changes(
        body.get("status"),
        body.get("classification"),
        body.get("determination"),
        body.get("assignedTo"),
        body.get("comment"),
    )


def _actor(request: web.Request) -> Actor:
    return Actor(request.headers.get("X-SafeLinks-User") or "api", via="api")


async def list_alerts(request: web.Request) -> web.Response:
    system, services = request.config_dict[ALERTING], request.config_dict[SERVICES]
    flt = AlertFilter(**_common(request, AlertStatus))
    alerts, total = await system.writer.alerts.page(flt)
    items = [alert_json(a, public_url=services.settings.public_url) for a in alerts]
    return _page(request, items, total, flt.top, flt.skip)


async def get_alert(request: web.Request) -> web.Response:
    system, services = request.config_dict[ALERTING], request.config_dict[SERVICES]
    alert = await system.writer.alerts.get(_id(request))
    if alert is None:
        raise NotFound(f"no alert {request.match_info['id']}")
    return web.json_response(alert_json(alert, public_url=services.settings.public_url))


async def patch_alert(request: web.Request) -> web.Response:
    system, services = request.config_dict[ALERTING], request.config_dict[SERVICES]
    alert = await system.actions.update_alert(_id(request), await _changes(request), _actor(request))
    return web.json_response(alert_json(alert, public_url=services.settings.public_url))


async def list_incidents(request: web.Request) -> web.Response:
    system, services = request.config_dict[ALERTING], request.config_dict[SERVICES]
    flt = IncidentFilter(**_common(request, IncidentStatus))
    incidents, total = await system.writer.incidents.page(flt)
    expand = request.query.get("$expand") == "alerts"
    items = []
    for incident in incidents:
        alerts = await system.writer.alerts.of_incident(incident.id) if expand else None
        items.append(incident_json(incident, alerts, public_url=services.settings.public_url))
    return _page(request, items, total, flt.top, flt.skip)


async def get_incident(request: web.Request) -> web.Response:
    system, services = request.config_dict[ALERTING], request.config_dict[SERVICES]
    incident = await system.writer.incidents.get(_id(request))
    if incident is None:
        raise NotFound(f"no incident {request.match_info['id']}")
    alerts = await system.writer.alerts.of_incident(incident.id)
    return web.json_response(incident_json(incident, alerts, public_url=services.settings.public_url))


async def patch_incident(request: web.Request) -> web.Response:
    system = request.config_dict[ALERTING]
    incident_id = _id(request)
    await system.actions.update_incident(incident_id, await _changes(request), _actor(request))
    return await get_incident(request)


async def post_clicks(request: web.Request) -> web.Response:
    """Ingest clicks (UrlClickEvents records) from e-mail gateways; the alert rules run on them."""
    services: Services = request.config_dict[SERVICES]
    try:
        body = await request.json()
    except json.JSONDecodeError:
        raise ClickRecordError(
            'the body must be JSON: one UrlClickEvents record, a list, or {"value": [...]}'
        ) from None
    clicks = [click_from_record(r, n) for n, r in enumerate(records_of(body))]
    accepted, duplicates = [], []
    for click in clicks:
        try:
            await services.clicks.record(click)
        except DuplicateKey:
            duplicates.append(click.report_id)
            continue
        accepted.append(click.report_id)
        services.bus.publish(ClickRecorded(click))
    return web.json_response(
        {"accepted": len(accepted), "duplicates": len(duplicates), "reportIds": accepted}, status=202
    )


def setup_api(app: web.Application) -> None:
    """Mount ``/api/v1``; the alerting system must be set under ``ALERTING`` before start."""
    api = web.Application()
    api.router.add_get("/alerts", _guarded(list_alerts))
    api.router.add_get("/alerts/{id}", _guarded(get_alert))
    api.router.add_patch("/alerts/{id}", _guarded(patch_alert))
    api.router.add_get("/incidents", _guarded(list_incidents))
    api.router.add_get("/incidents/{id}", _guarded(get_incident))
    api.router.add_patch("/incidents/{id}", _guarded(patch_incident))
    api.router.add_post("/clicks", _guarded(post_clicks))
    app.add_subapp("/api/v1/", api)
