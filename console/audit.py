"""Audit: every change made from the console, the command line, the REST API and cards."""

from __future__ import annotations

from aiohttp import web

from console.filters import PAGE_SIZE, FilterError, moment, page_number, text
from console.guard import viewer
from console.state import CONSOLE
from shared.store.audit import AuditFilter, AuditLog

WAYS = ("console", "cli", "api", "card", "bot", "quarantine", "verdict")


@viewer
async def audit_page(request: web.Request) -> web.StreamResponse:
    console = request.config_dict[CONSOLE]
    now = console.clock()
    try:
        via = text(request, "via")
        if via is not None and via not in WAYS:
            raise FilterError(f"via must be one of {', '.join(WAYS)}")
        page = page_number(request)
        flt = AuditFilter(actor=text(request, "actor"), via=via, action=text(request, "action"),
                          since=moment(request, "since", now), until=moment(request, "until", now),
                          top=PAGE_SIZE, skip=(page - 1) * PAGE_SIZE)
    except FilterError as exc:
        return console.templates.page("audit.html", request, status=400, error=str(exc), entries=[], page=1,
                                      more=False, ways=WAYS)
    entries, more = await AuditLog(console.services.db).page(flt)
    return console.templates.page("audit.html", request, error=None, entries=entries, page=page, more=more,
                                  ways=WAYS)
