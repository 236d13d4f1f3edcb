"""Quarantine: the Teams messages hidden from their readers, and "Release" for administrators.

The page and its button use the service the CLI (``safelinks quarantine release``), the REST API and
the alert cards use (``shared.quarantine.Quarantine``), found under the application's ``QUARANTINE``
key; the release and its audit row are one transaction there.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from console.filters import PAGE_SIZE, FilterError, moment, page_number, text
from console.guard import changer, viewer
from console.incidents import actor_of
from console.render import not_found, see_other
from console.state import CONSOLE
from safelinks.quarantine import QUARANTINE
from shared.quarantine import QuarantineError, QuarantineNotFound, State
from shared.quarantine.service import Quarantine
from shared.store.quarantine import QuarantineFilter

STATES = [s.value for s in State]


def service_of(request: web.Request) -> Quarantine | None:
    """The quarantine service when quarantine is on (the page and its actions do not exist otherwise)."""
    found = request.config_dict.get(QUARANTINE)
    return found if found is not None and found.enabled else None


@viewer
async def quarantine_page(request: web.Request) -> web.StreamResponse:
    console, quarantine = request.config_dict[CONSOLE], service_of(request)
    if quarantine is None:
        raise not_found()
    context: dict[str, Any] = {"states": STATES, "done": _DONE.get(request.query.get("done", ""))}
    try:
        state = text(request, "state")
        if state is not None and state not in STATES:
            raise FilterError(f"state must be one of {', '.join(STATES)}")
        page = page_number(request)
        now = console.clock()
        flt = QuarantineFilter(state=state, sender=text(request, "sender"), url=text(request, "url"),
                               since=moment(request, "since", now), until=moment(request, "until", now),
                               top=PAGE_SIZE, skip=(page - 1) * PAGE_SIZE)
    except FilterError as exc:
        return console.templates.page("quarantine.html", request, status=400, error=str(exc), records=[], page=1,
                                      more=False, **context)
    records, more = await quarantine.store.page(flt)
    return console.templates.page("quarantine.html", request, error=None, records=records, page=page, more=more,
                                  **context)


_DONE = {"released": "Release asked for: a worker asks Microsoft Graph to show the message again; "
                     "the state below follows.",
         "unchanged": "Nothing to do: the message is already released or being released; Microsoft Graph is "
                      "not asked again."}


@changer()
async def release(request: web.Request) -> web.StreamResponse:
    console, quarantine = request.config_dict[CONSOLE], service_of(request)
    if quarantine is None:
        raise not_found()
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise not_found()
    try:
        outcome = await quarantine.release(int(raw), actor=actor_of(request))
    except QuarantineNotFound as exc:
        return console.templates.page("refused.html", request, status=404, title="No such message", message=str(exc))
    except QuarantineError as exc:
        return console.templates.page("refused.html", request, status=409, title="Not released", message=str(exc))
    return see_other(f"/console/quarantine?done={'released' if outcome.changed else 'unchanged'}")
