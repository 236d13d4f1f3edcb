"""The console's pages: jinja2 with autoescaping, served with the proxy's protective headers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jinja2
from aiohttp import web
from multidict import CIMultiDict

from proxy.pages import SECURITY_HEADERS

# (label, path) in the order the navigation shows them. Quarantine joins when it is enabled.
NAV = (
    ("Overview", "/console/"),
    ("Alerts", "/console/alerts"),
    ("Incidents", "/console/incidents"),
    ("Clicks", "/console/clicks"),
    ("Quarantine", "/console/quarantine"),
    ("Allow/Block", "/console/lists"),
    ("Verdicts", "/console/verdicts"),
    ("Feeds", "/console/feeds"),
    ("Policies", "/console/policies"),
    ("Audit", "/console/audit"),
)
HTML_HEADERS = CIMultiDict({**SECURITY_HEADERS, "Content-Type": "text/html; charset=utf-8"})


def when(value: datetime | float | None) -> str:
    """A moment as the console shows it: UTC, to the second."""
    if value is None:
        return "—"
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _query_with(query: dict[str, str], **changes: Any) -> str:
    """The current filter's query string with some values changed (for paging links)."""
    from urllib.parse import urlencode

    merged = {**query, **{k: str(v) for k, v in changes.items()}}
    return urlencode({k: v for k, v in merged.items() if v not in ("", None)})


class Blanks(dict[str, str]):
    """The query string as templates see it: a missing filter is empty, not an error."""

    def __missing__(self, key: str) -> str:
        return ""


class Templates:
    def __init__(self, *, quarantine: bool = False) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.PackageLoader("console", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["when"] = when
        self._env.globals["nav"] = tuple(item for item in NAV if quarantine or item[0] != "Quarantine")
        self._env.globals["query_with"] = _query_with

    def page(self, template: str, request: web.Request, *, status: int = 200, **context: Any) -> web.Response:
        from console.guard import SESSION_KEY

        session = request.get(SESSION_KEY)  # the sign-in and refusal pages have none
        html = self._env.get_template(template).render(
            session=session, path=request.path, query=Blanks(request.query), **context
        )
        return web.Response(status=status, body=html.encode("utf-8"), headers=HTML_HEADERS.copy())


def see_other(location: str) -> web.Response:
    """Where a form goes after it changed something (POST, then GET: a reload never repeats it)."""
    headers = CIMultiDict(SECURITY_HEADERS)
    headers["Location"] = location
    return web.Response(status=303, headers=headers)


def not_found() -> web.HTTPNotFound:
    return web.HTTPNotFound(text="Not found.", headers=CIMultiDict(SECURITY_HEADERS))
