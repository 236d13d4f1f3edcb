"""Clicks: the UrlClickEvents explorer, filtered and paged in the store, and its streamed exports."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from console.filters import PAGE_SIZE, FilterError, choice, moment, page_number, text
from console.guard import viewer
from console.state import CONSOLE
from proxy.pages import SECURITY_HEADERS
from shared.clicks import EXPORT_COLUMNS, ActionType, Workload
from shared.store.clicks import ClickFilter

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def click_filter(request: web.Request, now: datetime) -> ClickFilter:
    through = text(request, "clicked_through")
    if through not in (None, "true", "false"):
        raise FilterError("clicked_through must be true or false")
    return ClickFilter(
        since=moment(request, "since", now), until=moment(request, "until", now), user=text(request, "user"),
        url_contains=text(request, "url"), action_type=choice(request, "action_type", ActionType),
        clicked_through=None if through is None else through == "true",
        workload=choice(request, "workload", Workload))


@viewer
async def clicks_page(request: web.Request) -> web.StreamResponse:
    console = request.config_dict[CONSOLE]
    context: dict[str, Any] = {"action_types": [a.value for a in ActionType],
                               "workloads": [w.value for w in Workload]}
    try:
        flt = click_filter(request, console.clock())
        page = page_number(request)
    except FilterError as exc:
        return console.templates.page("clicks.html", request, status=400, error=str(exc), clicks=[], page=1,
                                      more=False, **context)
    clicks, more = await console.services.clicks.page(flt, top=PAGE_SIZE, skip=(page - 1) * PAGE_SIZE)
    return console.templates.page("clicks.html", request, error=None, clicks=clicks, page=page, more=more,
                                  **context)


def _cell(value: Any) -> str:
    """A CSV cell a spreadsheet shows as text: one starting like a formula gets a leading quote."""
    shown = json.dumps(value) if isinstance(value, list) else str(value).lower() if isinstance(value, bool) \
        else str(value)
    return "'" + shown if shown.startswith(_FORMULA_START) else shown


@viewer
async def clicks_export(request: web.Request) -> web.StreamResponse:
    """The filtered clicks, oldest first, as CSV or JSON lines, written as they are read."""
    console = request.config_dict[CONSOLE]
    kind = request.match_info["format"]
    try:
        flt = click_filter(request, console.clock())
    except FilterError as exc:
        return console.templates.page("refused.html", request, status=400, title="Bad filter", message=str(exc))
    headers = CIMultiDict(SECURITY_HEADERS)
    headers["Content-Type"] = "text/csv; charset=utf-8" if kind == "csv" else "application/x-ndjson"
    headers["Content-Disposition"] = f'attachment; filename="clicks.{kind}"'
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer) if kind == "csv" else None
    if writer:
        writer.writerow(EXPORT_COLUMNS)
    async for click in console.services.clicks.stream(flt):
        record = click.to_record()
        if writer:
            writer.writerow([_cell(record[c]) for c in EXPORT_COLUMNS])
        else:
            buffer.write(json.dumps(record, ensure_ascii=False) + "\n")
        if buffer.tell() > 64 * 1024:
            await response.write(buffer.getvalue().encode("utf-8"))
            buffer.seek(0)
            buffer.truncate()
    await response.write(buffer.getvalue().encode("utf-8"))
    await response.write_eof()
    return response
