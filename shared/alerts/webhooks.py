"""Alert webhooks: the alert as Graph ``security/alert`` v2 JSON, POSTed with a signed timestamp and event.

Each delivery carries ``X-SafeLinks-Signature: t=<unix seconds>,v1=<hex>``, where ``v1`` is
HMAC-SHA256 under the webhook's secret of the bytes ``<t>.<event>.<body>`` (``event`` as in
``X-SafeLinks-Event``, ``body`` the request body exactly as received). A receiver recomputes it,
compares in constant time, and refuses a ``t`` older than a few minutes (a replay) or a body sent
under another event name (a relabelled event); ``verify_signature`` does all three. Without a
configured secret the header says ``unsigned`` (and the service warns at start).

``X-SafeLinks-Delivery`` carries a stable id per delivery: a retried delivery repeats it (with a
fresh timestamp and signature), so receivers can drop duplicates. 2xx is success; 408, 425, 429 and
5xx are retried (honouring ``Retry-After``); a redirect is not followed and, like other 4xx answers,
means the receiver refuses the item. The secret is looked up when sending, from the configuration:
it is never stored with the queued delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp

from shared.outbox import PermanentFailure, RetryLater
from shared.redaction import redact_text, redact_url
from shared.retry_after import parse_retry_after
from shared.store.database import Database
from shared.store.outbox import OutboxItem, OutboxTable

KIND = "webhook"
SIGNATURE_HEADER = "X-SafeLinks-Signature"
DELIVERY_HEADER = "X-SafeLinks-Delivery"
EVENT_HEADER = "X-SafeLinks-Event"
UNSIGNED = "unsigned"
TOLERANCE_SECONDS = 300
_RETRY_STATUSES = {408, 425, 429}
log = logging.getLogger(__name__)

SecretLookup = Callable[[str], str]


def body_of(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _mac(secret: str, timestamp: int, event: str, body: bytes) -> str:
    signed = f"{timestamp}.{event}.".encode() + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, event: str, timestamp: int) -> str:
    """The signature header's value: ``t=<timestamp>,v1=<HMAC-SHA256 of "<t>.<event>.<body>">``."""
    return f"t={timestamp},v1={_mac(secret, timestamp, event, body)}"


def verify_signature(secret: str, body: bytes, header: str, *, event: str, now: float | None = None,
                     tolerance: float = TOLERANCE_SECONDS) -> bool:
    """What a receiver does: parse ``t`` and ``v1``, refuse an old ``t``, recompute and compare in constant time."""
    fields: dict[str, list[str]] = {}
    for part in (header or "").split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(name, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = _mac(secret, timestamp, event, body)
    return any(hmac.compare_digest(expected, given) for given in fields.get("v1", []))


def payload(url: str, event: str, document: dict[str, Any]) -> dict[str, Any]:
    """The outbox payload for one webhook delivery (no secret: it is looked up when sending)."""
    return {"url": url, "event": event, "document": document}


def secrets_of(hooks: Iterable[Any]) -> dict[str, str]:
    """URL to secret, from the configured webhooks (objects with ``url`` and ``secret``)."""
    return {hook.url: hook.secret for hook in hooks if hook.secret}


def warn_unsigned(hooks: Iterable[Any]) -> list[str]:
    """Warn (once, at start) about each webhook that has no secret; returns their redacted URLs."""
    unsigned = sorted({redact_url(hook.url) for hook in hooks if not hook.secret})
    for url in unsigned:
        log.warning("webhook %s has no secret: its deliveries are sent unsigned (%s: %s); set "
                    "SAFELINKS_ALERT_WEBHOOK_SECRET or the hook's secret", url, SIGNATURE_HEADER, UNSIGNED)
    return unsigned


async def drop_stored_secrets(db: Database) -> int:
    """Remove webhook secrets that older versions copied into queued deliveries; returns rows changed."""
    return await OutboxTable(db).drop_from_payloads(KIND, "secret")


class WebhookSender:
    """The outbox handler for kind ``webhook``; one shared HTTP session."""

    def __init__(self, secrets: dict[str, str] | SecretLookup | None = None, *, timeout: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        found = secrets or {}
        self._secret_for: SecretLookup = found.get if isinstance(found, dict) else found  # type: ignore[assignment]
        self._clock = clock

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __call__(self, item: OutboxItem) -> dict[str, Any] | None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        p = item.payload
        body = body_of(p["document"])
        event = str(p.get("event", "alert.created"))
        secret = self._secret_for(p["url"]) or ""
        headers = {
            "Content-Type": "application/json",
            DELIVERY_HEADER: f"outbox-{item.id}",
            EVENT_HEADER: event,
            "User-Agent": "teams-safelinks-webhook/1",
            SIGNATURE_HEADER: sign(secret, body, event=event, timestamp=int(self._clock())) if secret else UNSIGNED,
        }
        try:
            async with self._session.post(p["url"], data=body, headers=headers, allow_redirects=False) as response:
                status = response.status
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                text = (await response.text(errors="replace"))[:200]
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise RetryLater(redact_text(f"{type(exc).__name__}: {exc}")) from exc
        if 200 <= status < 300:
            return {"status": status}
        if 300 <= status < 400:
            raise PermanentFailure(f"HTTP {status}: the receiver redirects; webhooks do not follow redirects")
        if status in _RETRY_STATUSES or status >= 500:
            raise RetryLater(f"HTTP {status}: {text}", after=retry_after)
        raise PermanentFailure(f"HTTP {status}: {text}")
