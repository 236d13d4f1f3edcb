"""The REST API (``/api/v1``): alerts and incidents in Graph's shapes, and click ingestion.

Every route wants ``Authorization: Bearer <token>`` (the scheme is required: a bare token is
refused) with one of ``SAFELINKS_API_TOKENS`` or ``SAFELINKS_API_DELEGATED_TOKENS``. Only a delegated
token may name the person it acts for in ``X-SafeLinks-User`` (a console or SOAR acting for its
signed-in analyst); any other token is recorded in the audit trail as ``api``. Listings page like
Graph (``$top``, ``$skip``, ``@odata.count``, ``@odata.nextLink``, built from ``SAFELINKS_PUBLIC_URL``
and never from the request's Host header) and filter by ``status``, ``severity`` and creation time
(``since``/``until``: ISO 8601, or a duration back from now such as ``24h`` or ``7d``). Bad input,
numbers out of range included, is answered 400 with the reason, as JSON.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from yarl import URL

from safelinks.statuses import Forbidden, status_of
from shared.alerts.actions import Actor, Changes
from shared.alerts.errors import InvalidChange, NotFound
from shared.alerts.graph import alert_json, incident_json
from shared.alerts.ingest import ClickRecordError, click_from_record, records_of
from shared.alerts.model import AlertStatus, IncidentStatus, Severity, parse_enum
from shared.alerts.system import Alerting
from shared.durations import DurationError, parse_moment
from shared.errors import SafeLinksError
from shared.events import ClickRecorded
from shared.jsonbody import JSONBodyError, loads
from shared.services import SERVICES, Services
from shared.store import DuplicateKey
from shared.store.alerts import AlertFilter
from shared.store.incidents import IncidentFilter

log = logging.getLogger("safelinks.api")
ALERTING: web.AppKey[Alerting] = web.AppKey("alerting", Alerting)
MAX_TOP = 500
MAX_NUMBER = 10**9  # $skip and ids: far past any real table, far inside the store's 64-bit integers
# The longest each changeable field may be: enough for any enum value, a UPN, an analyst's note.
_PATCH_FIELDS = {"status": 64, "classification": 64, "determination": 64, "assignedTo": 256, "comment": 4000}
_ACTOR_HEADER = "X-SafeLinks-User"
_MAX_ACTOR = 256
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def guarded(handler: Handler) -> Handler:
    """The token check and the error answers, wrapped around each API handler.

    A wrapper rather than a middleware: any middleware, even on a sub-application, makes aiohttp run
    its middleware machinery on every request of the whole server, the click path included.
    """

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        return await _api_errors(request, handler)

    return guarded


_DELEGATED: web.RequestKey[bool] = web.RequestKey("api_token_delegated", bool)  # may name whom it acts for


def _bearer(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None for any other form."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    # Configured tokens are printable ASCII: anything else cannot match (and must not reach the comparison).
    valid = scheme.lower() == "bearer" and token.isascii() and token.isprintable() and " " not in token
    return token if valid and token else None


def _match(token: str, known: list[str]) -> bool:
    # Every known token is compared (no early exit), so timing says nothing about which one came close.
    found = False
    for k in known:
        found = hmac.compare_digest(token.encode(), k.encode()) or found
    return found


async def _api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings = request.config_dict[SERVICES].settings
    token = _bearer(request)
    delegated = [t.get_secret_value() for t in settings.api_delegated_tokens]
    plain = [t.get_secret_value() for t in settings.api_tokens]
    acts_for_others = token is not None and _match(token, delegated)
    if token is None or not (acts_for_others or _match(token, plain)):
        return _error(401, "Unauthorized", "a valid API token is required (Authorization: Bearer <token>)")
    request[_DELEGATED] = acts_for_others
    try:
        return await handler(request)
    except SafeLinksError as exc:
        answer = status_of(exc)
        if answer is None:
            raise
        return _error(*answer, str(exc))


def _when(value: str, now: datetime, name: str) -> datetime:
    try:
        return parse_moment(value, now)
    except DurationError as exc:
        raise InvalidChange(f"{name}: {exc}") from None


def _number(raw: str, name: str) -> int:
    # isdigit() alone accepts "²" and other Unicode digits that int() refuses.
    if not (raw.isascii() and raw.isdigit()):
        raise InvalidChange(f"{name} must be a whole number")
    if len(raw) > len(str(MAX_NUMBER)) or int(raw) > MAX_NUMBER:
        raise InvalidChange(f"{name} must be at most {MAX_NUMBER}")
    return int(raw)


def _int(request: web.Request, *names: str, default: int, limit: int | None = None) -> int:
    for name in names:
        raw = request.query.get(name)
        if raw is None:
            continue
        value = _number(raw, name)
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
        # The configured public URL, not the Host header: a forged Host must not steer API clients elsewhere.
        public = request.config_dict[SERVICES].settings.public_url
        body["@odata.nextLink"] = str(URL(public + request.path).with_query(query))
    return web.json_response(body)


def _id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()):
        raise NotFound(f"no such id {raw[:40]!r}")
    return _number(raw, "id")


async def _json_body(request: web.Request, what: str) -> Any:
    try:
        return loads(await request.read())
    except JSONBodyError as exc:
        raise InvalidChange(f"{exc}: {what}") from None


async def _changes(request: web.Request) -> Changes:
    body = await _json_body(request, "send a JSON object")
    if not isinstance(body, dict):
        raise InvalidChange("the body must be a JSON object")
    unknown = set(body) - set(_PATCH_FIELDS)
    if unknown:
        shown = ", ".join(sorted(n[:40] for n in unknown)[:5])
        raise InvalidChange(f"cannot change {shown}: use {', '.join(sorted(_PATCH_FIELDS))}")
    for name, value in body.items():
        if not isinstance(value, str):
            raise InvalidChange(f"{name} must be a string")
        if len(value) > _PATCH_FIELDS[name]:
            raise InvalidChange(f"{name} is longer than {_PATCH_FIELDS[name]} characters")
    return Changes(
        body.get("status"),
        body.get("classification"),
        body.get("determination"),
        body.get("assignedTo"),
        body.get("comment"),
    )


def actor_of(request: web.Request) -> Actor:
    """Who an API request acts as: the token, or the person a delegated token names in its header."""
    named = request.headers.get(_ACTOR_HEADER)
    if named is None:
        return Actor("api", via="api")
    if not request[_DELEGATED]:
        raise Forbidden(f"this token may not act for others ({_ACTOR_HEADER}): "
                         "configure it in SAFELINKS_API_DELEGATED_TOKENS")
    if not named.strip() or len(named) > _MAX_ACTOR or not named.isprintable():
        raise InvalidChange(f"{_ACTOR_HEADER} must be 1-{_MAX_ACTOR} printable characters")
    return Actor(named.strip(), via="api")


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
    alert = await system.actions.update_alert(_id(request), await _changes(request), actor_of(request))
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
    await system.actions.update_incident(incident_id, await _changes(request), actor_of(request))
    return await get_incident(request)


async def post_clicks(request: web.Request) -> web.Response:
    """Ingest clicks (UrlClickEvents records) from e-mail gateways; the alert rules run on them."""
    services: Services = request.config_dict[SERVICES]
    try:
        body = loads(await request.read())
    except JSONBodyError as exc:
        raise ClickRecordError(f'{exc}: send one UrlClickEvents record, a list, or {{"value": [...]}}') from None
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
    api.router.add_get("/alerts", guarded(list_alerts))
    api.router.add_get("/alerts/{id}", guarded(get_alert))
    api.router.add_patch("/alerts/{id}", guarded(patch_alert))
    api.router.add_get("/incidents", guarded(list_incidents))
    api.router.add_get("/incidents/{id}", guarded(get_incident))
    api.router.add_patch("/incidents/{id}", guarded(patch_incident))
    api.router.add_post("/clicks", guarded(post_clicks))
    app.add_subapp("/api/v1/", api)
