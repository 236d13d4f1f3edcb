"""Allow/Block: the Tenant Allow/Block List with Defender's syntax, entered, listed and removed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from aiohttp import web

from console.filters import PAGE_SIZE, FilterError, page_number, text
from console.guard import changer, viewer
from console.incidents import actor_of
from console.render import Blanks, see_other
from console.state import CONSOLE
from shared.urllists.tenant_list import TablAction, TablError
from shared.urllists.tenant_list_entries import is_expired

EXPIRY_CHOICES = (("30d", "30 days"), ("1d", "1 day"), ("7d", "7 days"), ("90d", "90 days (block only)"),
                  ("never", "Never (allows: 45 days after last use)"))
_DAYS = {"1d": 1, "7d": 7, "30d": 30, "90d": 90}


async def _render(request: web.Request, *, status: int = 200, error: str | None = None,
                  form: dict[str, str] | None = None, done: str | None = None) -> web.Response:
    console = request.config_dict[CONSOLE]
    try:
        action = text(request, "action")
        kind = TablAction(action) if action in ("allow", "block") else None
        page = page_number(request)
        contains = text(request, "q", limit=250)
    except FilterError:
        kind, page, contains = None, 1, None
    entries, more = await console.services.tenant_list.page(action=kind, contains=contains, top=PAGE_SIZE,
                                                            skip=(page - 1) * PAGE_SIZE)
    now = console.clock()
    return console.templates.page(
        "lists.html", request, status=status, error=error, form=Blanks(form or {}), done=done, page=page, more=more,
        entries=[(e, by, is_expired(e, now)) for e, by in entries], expiry_choices=EXPIRY_CHOICES)


_DONE = {"block": "blocked", "allow": "allowed", "removed": "removed"}


@viewer
async def lists_page(request: web.Request) -> web.StreamResponse:
    done = _DONE.get(request.query.get("done", ""))
    what = request.query.get("value", "")[:250]
    return await _render(request, done=f"{what} {done}." if done and what else None)


def _expiry(choice: str, on: str, now: datetime) -> tuple[datetime | None, bool]:
    """(expires_at, no_expiration) from the form; a date wins over the choice."""
    if on:
        try:
            day = datetime.fromisoformat(on)
        except ValueError:
            raise TablError("the expiry date must be a date such as 2026-12-31") from None
        return (day if day.tzinfo else day.replace(tzinfo=UTC)) + timedelta(hours=23, minutes=59), False
    if choice == "never":
        return None, True
    if choice not in _DAYS:
        raise TablError("pick an expiry")
    return now + timedelta(days=_DAYS[choice]), False


@changer()
async def add_entry(request: web.Request) -> web.StreamResponse:
    console = request.config_dict[CONSOLE]
    form = await request.post()
    values = {k: str(form.get(k, "")).strip() for k in ("value", "expiry", "expires_on", "notes", "action")}
    if values["action"] not in ("block", "allow"):
        return await _render(request, status=400, error="press Block or Allow", form=values)
    action = TablAction(values["action"])
    now = console.clock()
    try:
        if not values["value"]:
            raise TablError("enter a URL, a domain or a pattern such as *.contoso.com/*")
        if len(values["notes"]) > 1000:
            raise TablError("notes are limited to 1000 characters")
        expires_at, never = _expiry(values["expiry"], values["expires_on"], now)
        entry = await console.services.tenant_list.add(
            values["value"], action, expires_at=expires_at, no_expiration=never, notes=values["notes"],
            created_by=actor_of(request).id, now=now, actor=actor_of(request))
    except TablError as exc:
        return await _render(request, status=400, error=str(exc), form=values)
    console.services.verdicts.invalidate()
    return see_other(f"/console/lists?{urlencode({'done': action.value, 'value': entry.value})}")


@changer()
async def remove_entry(request: web.Request) -> web.StreamResponse:
    console = request.config_dict[CONSOLE]
    form = await request.post()
    value, action = str(form.get("value", "")), str(form.get("action", ""))
    if action not in ("block", "allow"):
        return await _render(request, status=400, error="unknown list")
    try:
        removed = await console.services.tenant_list.remove(value, TablAction(action), actor=actor_of(request))
    except TablError as exc:
        return await _render(request, status=400, error=str(exc))
    if not removed:
        return await _render(request, status=404, error=f"{value} is not on the {action} list")
    console.services.verdicts.invalidate()
    return see_other(f"/console/lists?{urlencode({'done': 'removed', 'value': value})}")
