"""Reading a listing's filter from the query string: bad values are reported, not guessed at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

from aiohttp import web

from shared.alerts.errors import RulesError
from shared.alerts.rules import parse_duration
from shared.errors import SafeLinksError

PAGE_SIZE = 50


class FilterError(SafeLinksError, ValueError):
    """A filter value the console cannot use; the message says which and why."""


def text(request: web.Request, name: str, *, limit: int = 500) -> str | None:
    value = request.query.get(name, "").strip()
    if len(value) > limit:
        raise FilterError(f"{name} is longer than {limit} characters")
    return value or None


def choice(request: web.Request, name: str, kind: type[StrEnum]) -> str | None:
    value = text(request, name)
    if value is None:
        return None
    for member in kind:
        if member.value.lower() == value.lower():
            return member.value
    raise FilterError(f"{name} must be one of {', '.join(m.value for m in kind)}")


def moment(request: web.Request, name: str, now: datetime) -> datetime | None:
    """A point in time: a duration back from now (``24h``, ``7d``) or an ISO date/time (UTC unless given)."""
    value = text(request, name, limit=40)
    if value is None:
        return None
    try:
        return now - timedelta(seconds=parse_duration(value))
    except RulesError:
        pass
    try:
        found = datetime.fromisoformat(value)
    except ValueError:
        raise FilterError(f"{name}: use a duration back from now such as 24h or 7d, or a date such as "
                          "2026-11-01 or 2026-11-01T12:00") from None
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def page_number(request: web.Request) -> int:
    raw = request.query.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= 100_000:
        raise FilterError("page must be a whole number from 1")
    return int(raw)
