"""Alert webhooks: the alert as Graph ``security/alert`` v2 JSON, POSTed with an HMAC signature.

The body is signed with HMAC-SHA256 under the webhook's secret and the signature sent as
``X-SafeLinks-Signature: sha256=<hex>``, so a receiver can check the body came from us unaltered
(compare with ``verify_signature``). ``X-SafeLinks-Delivery`` carries a stable id per delivery:
a retried delivery repeats it, so receivers can drop duplicates. 2xx is success; 408, 425, 429 and
5xx are retried (honouring ``Retry-After``); other 4xx answers mean the receiver refuses the item.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import aiohttp

from shared.outbox import OutboxItem, PermanentFailure, RetryLater
from shared.retry_after import parse_retry_after

KIND = "webhook"
SIGNATURE_HEADER = "X-SafeLinks-Signature"
DELIVERY_HEADER = "X-SafeLinks-Delivery"
EVENT_HEADER = "X-SafeLinks-Event"
_RETRY_STATUSES = {408, 425, 429}


def body_of(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute the signature and compare in constant time."""
    return hmac.compare_digest(sign(secret, body), header or "")


def payload(url: str, secret: str, event: str, document: dict[str, Any]) -> dict[str, Any]:
    """The outbox payload for one webhook delivery."""
    return {"url": url, "secret": secret, "event": event, "document": document}


class WebhookSender:
    """The outbox handler for kind ``webhook``; one shared HTTP session."""

    def __init__(self, *, timeout: float = 10.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __call__(self, item: OutboxItem) -> dict[str, Any] | None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        p = item.payload
        body = body_of(p["document"])
        headers = {
            "Content-Type": "application/json",
            DELIVERY_HEADER: f"outbox-{item.id}",
            EVENT_HEADER: p.get("event", "alert.created"),
            "User-Agent": "teams-safelinks-webhook/1",
        }
        if p.get("secret"):
            headers[SIGNATURE_HEADER] = sign(p["secret"], body)
        try:
            async with self._session.post(p["url"], data=body, headers=headers) as response:
                status = response.status
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                text = (await response.text(errors="replace"))[:200]
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise RetryLater(f"{type(exc).__name__}: {exc}") from exc
        if 200 <= status < 300:
            return {"status": status}
        if status in _RETRY_STATUSES or status >= 500:
            raise RetryLater(f"HTTP {status}: {text}", after=retry_after)
        raise PermanentFailure(f"HTTP {status}: {text}")
