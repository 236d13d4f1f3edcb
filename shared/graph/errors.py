"""Graph failures, split by what the caller should do about them.

``GraphError`` is the base. ``GraphUnavailable`` (throttled, a 5xx, no answer, no token for now)
is worth trying again, after ``retry_after`` seconds when Graph said so. ``GraphRefused`` (a 4xx:
no permission, a message from another organisation, a message that is gone) will not change by
trying again; ``status`` and ``code`` say what Graph answered.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

from shared.errors import SafeLinksError

MAX_RETRY_AFTER = 3600.0


class GraphError(SafeLinksError):
    """A Graph or token call failed."""

    def __init__(self, message: str, *, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class GraphUnavailable(GraphError):
    """Try again later (``retry_after`` seconds when the far side named it)."""

    def __init__(self, message: str, *, status: int = 0, code: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class GraphRefused(GraphError):
    """Graph (or the token endpoint) refused the request for good."""


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), capped at an hour; None when absent or bad."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        at = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if at is None:
        return None
    return min(max(0.0, at.timestamp() - time.time()), MAX_RETRY_AFTER)
