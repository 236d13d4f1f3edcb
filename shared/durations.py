"""Durations: one syntax for the CLI, the REST API, the config and the alert rules.

A duration is a number of seconds, or a number with a unit: ``90``, ``90s``, ``15m``, ``1.5h``, ``7d``,
``2w``. Units are case-insensitive; spaces around the parts are allowed. Anything longer than
``MAX_SECONDS`` is refused, so a duration always fits date arithmetic (``9999999999d`` is an error,
never an overflow deep inside).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta

from shared.errors import SafeLinksError

UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_SECONDS = 100 * 366 * 86400  # a century: past any retention or look-back anyone configures
HINT = "use a number of seconds or a number with s, m, h, d or w (90s, 15m, 48h, 7d, 2w)"
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", re.IGNORECASE | re.ASCII)


class DurationError(SafeLinksError, ValueError):
    """A duration that cannot be read or is out of range; the message says why."""


def parse_duration(value: str | float | int) -> float:
    """``90``, ``"90s"``, ``"15m"``, ``"1.5h"``, ``"7d"``, ``"2w"`` → seconds."""
    if isinstance(value, bool):
        raise DurationError(f"duration {value!r}: {HINT}")
    if isinstance(value, int | float):
        seconds = float(value)
        if math.isnan(seconds) or seconds < 0:
            raise DurationError(f"duration {value!r} is negative or not a number")
    else:
        match = _DURATION.fullmatch(str(value))
        if not match:
            raise DurationError(f"duration {str(value)[:40]!r}: {HINT}")
        seconds = float(match.group(1)) * UNITS[match.group(2).lower()]
    if seconds > MAX_SECONDS:
        raise DurationError(f"duration {str(value)[:40]!r} is longer than a century")
    return seconds


def parse_moment(text: str, now: datetime) -> datetime:
    """A point in time: a duration back from ``now`` (``7d``), or ISO 8601 (in ``now``'s zone unless it says)."""
    try:
        return now - timedelta(seconds=parse_duration(text))
    except DurationError as exc:
        if _DURATION.fullmatch(text):  # a duration, but out of range: say so rather than "not a date"
            raise
        problem = exc
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise DurationError(f"{text[:40]!r}: {HINT}, or an ISO 8601 date (2026-11-01T12:00:00Z)") from problem
    return at if at.tzinfo else at.replace(tzinfo=now.tzinfo)


def format_duration(seconds: float) -> str:
    """The shortest spelling ``parse_duration`` reads back: ``3600`` → ``1h``, ``90`` → ``90s``."""
    for unit in ("d", "h", "m"):
        size = UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
