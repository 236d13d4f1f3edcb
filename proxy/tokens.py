"""Click-through tokens: bound to one warning-page view, short-lived, and used once.

A token is ``<report id>.<expiry>.<mac>``. The MAC uses a key derived for this purpose only, so no
other signature in the system verifies as a token. Single use is enforced by the store: the
click-through row's key (ReportId, IsClickedThrough) is unique.
"""

from __future__ import annotations

import base64
import hmac
import time

from shared.errors import SafeLinksError
from shared.signing import Keyring

_PURPOSE = "click-through-token"


class TokenError(SafeLinksError):
    """The token is forged, malformed or expired."""


def _mac(key: bytes, payload: str) -> str:
    digest = hmac.digest(key, payload.encode("ascii"), "sha256")  # one-shot: several times faster than hmac.new
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def issue(keyring: Keyring, report_id: str, ttl: int, *, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + ttl)
    payload = f"{report_id}.{expires}.{keyring.active}"
    return f"{payload}.{_mac(keyring.derived(_PURPOSE), payload)}"


def verify(keyring: Keyring, token: str, *, now: float | None = None) -> str:
    """Return the ReportId the token was issued for."""
    parts = token.split(".")
    if len(parts) != 4 or not all(parts):
        raise TokenError("malformed token")
    report_id, expires, kid, mac = parts
    if keyring.key(kid) is None:
        raise TokenError("token signed with an unknown key")
    if not hmac.compare_digest(_mac(keyring.derived(_PURPOSE, kid), f"{report_id}.{expires}.{kid}"), mac):
        raise TokenError("token signature does not match")
    try:
        expiry = int(expires)
    except ValueError:
        raise TokenError("malformed token") from None
    if (time.time() if now is None else now) > expiry:
        raise TokenError("token expired")
    return report_id
