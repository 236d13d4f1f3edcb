"""The one reader of ``Retry-After`` (RFC 9110 §10.2.3), for every client that honours it.

The header is either delay-seconds (digits only) or an HTTP-date. Anything else (``1e9``, ``inf``,
``-5``, ``nan``, a date in no known form) is ignored rather than trusted, and a delay is capped at
``MAX_SECONDS``: a peer must not park a delivery for ever, nor push a retry time out of range.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

MAX_SECONDS = 86400.0


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait, between 0 and ``MAX_SECONDS``; None when the header is absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        # Past nine digits it is over the cap anyway (and int() refuses thousands of digits).
        return MAX_SECONDS if len(text) > 9 else min(float(text), MAX_SECONDS)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:  # RFC 9110 dates are GMT; a date without a zone is not one of them
        return None
    wait = moment.timestamp() - (time.time() if now is None else now)
    return min(max(0.0, wait), MAX_SECONDS)
