"""Clicks reported by others (e-mail gateways, Defender exports) in the ``UrlClickEvents`` shape.

A posted click becomes a ``Click`` like the ones the proxy records, so the same rules, look-back
and incidents apply to it. A record without a ``ReportId`` gets one derived from its content, so
posting the same record twice stores it once. Its ``Url`` must be an http(s) URL written
``scheme://host`` and is kept as it was sent.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from shared.alerts.errors import AlertError
from shared.clicks import ActionType, Click, Workload
from shared.urls import InvalidURL, canonicalize

MAX_CLICKS_PER_REQUEST = 1000
_VERDICTS = ("clean", "suspicious", "malicious", "pending", "unknown")


class ClickRecordError(AlertError):
    """A posted click record is malformed; the message names the record and the field."""


def _text(record: dict[str, Any], name: str, where: str, *, required: bool = False) -> str | None:
    value = record.get(name)
    if value is None or value == "":
        if required:
            raise ClickRecordError(f"{where}: {name} is required")
        return None
    if not isinstance(value, str):
        raise ClickRecordError(f"{where}: {name} must be a string")
    return value[:2048]


def _list(record: dict[str, Any], name: str, where: str) -> tuple[str, ...]:
    value = record.get(name)
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        return tuple(p.strip() for p in value.split(",") if p.strip())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ClickRecordError(f"{where}: {name} must be a string or a list of strings")


def _timestamp(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise ClickRecordError(f"{where}: Timestamp is required (ISO 8601, e.g. 2026-11-01T12:00:00Z)")
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    except ValueError:
        raise ClickRecordError(f"{where}: Timestamp {value[:40]!r} is not ISO 8601") from None
    except OverflowError:  # year 1 or 9999 moved across a UTC offset
        raise ClickRecordError(f"{where}: Timestamp {value[:40]!r} is out of range") from None


def _verdict(record: dict[str, Any], action: ActionType, threats: tuple[str, ...], where: str) -> str:
    given = record.get("Verdict")
    if given:
        if given not in _VERDICTS:
            raise ClickRecordError(f"{where}: Verdict must be one of {', '.join(_VERDICTS)}")
        return str(given)
    if threats or action in (ActionType.CLICK_BLOCKED, ActionType.CLICK_BLOCKED_BY_TENANT_POLICY):
        return "malicious"
    return "pending" if action is ActionType.URL_SCAN_IN_PROGRESS else "unknown"


def click_from_record(record: Any, index: int = 0) -> Click:
    """One ``UrlClickEvents`` record (Defender's column names) as a ``Click``."""
    where = f"click #{index + 1}"
    if not isinstance(record, dict):
        raise ClickRecordError(f"{where}: must be a JSON object with UrlClickEvents columns")
    url = _text(record, "Url", where, required=True) or ""
    # Why urllib stays here: a record must spell its URL ``scheme://host``, and only a reading that
    # fixes nothing up can tell. The URL model reads as a browser does and would accept "example.com/x"
    # and "//example.com/x" (as typed: http assumed), "http:example.com" and "http:///example.com"
    # (both http://example.com/); a gateway reports the URL it saw, whole, so these are refused. The
    # model then refuses what a browser refuses. The click keeps the text as it was sent; the click
    # log indexes it by the host a browser reads there (``shared.store.clicks.url_rhost``).
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # "http://[::1/", "http://[zz]/": a bracket unclosed or not around an address
        host = None
    if host is None or parts.scheme.lower() not in ("http", "https"):
        raise ClickRecordError(f"{where}: Url {url[:100]!r} is not an http or https URL written scheme://host")
    try:
        canonicalize(url)
    except InvalidURL as exc:
        raise ClickRecordError(f"{where}: Url {url[:100]!r} is not a URL: {exc}") from None
    try:
        action = ActionType(record.get("ActionType") or "ClickAllowed")
    except ValueError:
        allowed = ", ".join(a.value for a in ActionType)
        raise ClickRecordError(f"{where}: ActionType must be one of {allowed}") from None
    try:
        workload = Workload.parse(str(record.get("Workload") or "Email"))
    except ValueError as exc:
        raise ClickRecordError(f"{where}: {exc}") from None
    through = record.get("IsClickedThrough", False)
    if through in (0, 1, "0", "1", "true", "false"):
        through = through in (1, "1", "true")
    if not isinstance(through, bool):
        raise ClickRecordError(f"{where}: IsClickedThrough must be true or false")
    threats = _list(record, "ThreatTypes", where)
    at = _timestamp(record.get("Timestamp"), where)
    report_id = _text(record, "ReportId", where)
    if report_id is None:
        digest = json.dumps(record, sort_keys=True, default=str).encode("utf-8")
        report_id = "ingest-" + hashlib.sha256(digest).hexdigest()[:32]
    return Click(
        report_id=report_id,
        timestamp=at,
        url=url,
        action_type=action,
        workload=workload,
        verdict=_verdict(record, action, threats, where),
        account_upn=_text(record, "AccountUpn", where),
        account_object_id=_text(record, "AccountObjectId", where),
        network_message_id=_text(record, "NetworkMessageId", where),
        threat_types=threats,
        detection_methods=_list(record, "DetectionMethods", where),
        ip_address=_text(record, "IPAddress", where),
        is_clicked_through=through,
        url_chain=_list(record, "UrlChain", where) or (url,),
        tenant_id=_text(record, "TenantId", where),
        sender=_text(record, "Sender", where),
        recipient=_text(record, "Recipient", where) or _text(record, "AccountUpn", where),
        user_agent=_text(record, "UserAgent", where),
        verdict_source=_text(record, "VerdictSource", where) or "gateway",
    )


def records_of(body: Any) -> list[Any]:
    """A posted body: one record, a list of them, or ``{"value": [...]}`` (Graph's collection form)."""
    if isinstance(body, dict) and "value" in body:
        body = body["value"]
    records = body if isinstance(body, list) else [body]
    if not records:
        raise ClickRecordError("no clicks in the request")
    if len(records) > MAX_CLICKS_PER_REQUEST:
        raise ClickRecordError(f"at most {MAX_CLICKS_PER_REQUEST} clicks per request")
    return records
