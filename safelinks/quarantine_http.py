"""Quarantine over HTTP: the REST API (``/api/v1/quarantine``) and the page a hidden message's tip links to.

The page is what the sender reaches from the policy tip Teams shows on their blocked message: why
it was hidden and how to dispute it. It is found by an unguessable token per record (not by id),
shows the links as text only, and is never cached or indexed.
"""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from safelinks.api import actor_of, guarded
from safelinks.quarantine import QUARANTINE
from shared.alerts.actions import Actor
from shared.alerts.errors import InvalidChange, NotFound
from shared.quarantine import State
from shared.quarantine.model import QuarantineRecord
from shared.quarantine.service import Quarantine

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
}


def _quarantine(request: web.Request) -> Quarantine:
    return request.config_dict[QUARANTINE]


def _record_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"no quarantined message {raw[:40]!r}")
    return int(raw)


async def list_records(request: web.Request) -> web.Response:
    state = request.query.get("state")
    if state and state not in {s.value for s in State}:
        raise InvalidChange(f"state must be one of {', '.join(s.value for s in State)}")
    records = await _quarantine(request).store.records(state=state)
    return web.json_response({"@odata.count": len(records), "value": [r.to_json() for r in records]})


async def get_record(request: web.Request) -> web.Response:
    record = await _quarantine(request).store.get(_record_id(request))
    if record is None:
        raise NotFound(f"no quarantined message {request.match_info['id']}")
    return web.json_response(record.to_json())


async def release_record(request: web.Request) -> web.Response:
    """Release a message; the token (or its delegated ``X-SafeLinks-User``) is who the audit log records, and
    a body's ``by`` the name shown on the alert. Asked again, it answers 200 and records nothing."""
    actor = actor_of(request)
    by = actor.id
    if request.can_read_body:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            raise InvalidChange("the body must be JSON (or empty)") from None
        if not isinstance(body, dict) or not isinstance(body.get("by", by), str):
            raise InvalidChange('the body must be a JSON object such as {"by": "name"}')
        by = body.get("by") or by
    outcome = await _quarantine(request).release(_record_id(request), actor=Actor(actor.id, by[:200], via="api"))
    # 202: Graph is asked; 200: the message already is (or is being) released, so nothing was asked again.
    return web.json_response(outcome.record.to_json(), status=202 if outcome.changed else 200)


def render_page(record: QuarantineRecord) -> str:
    e = html.escape
    released = record.state is State.RELEASED
    title = "This message was released" if released else "This message was hidden by Safe Links"
    links = "".join(f"<li><code>{e(link.url)}</code> — {e(link.verdict)}"
                    + (f" ({e(link.source)})" if link.source else "") + "</li>" for link in record.links)
    when = record.requested_at.strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}
code{{word-break:break-all}}</style></head>
<body><h1>{e(title)}</h1>
<p>{"Its readers can see it again." if released else
    "Its readers see that it was blocked instead of its content, because a link in it is dangerous."}</p>
<p><strong>Why:</strong> {e(record.reason)}</p>
{f"<ul>{links}</ul>" if links else ""}
<p>Hidden on {e(when)}.</p>
<p>If you sent this message and think this is a mistake, choose <em>Report</em> on the blocked message in Teams,
or tell your security team; they can release it. Please do not post the link again.</p>
</body></html>"""


async def page(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    record = await _quarantine(request).store.by_page_token(token) if 16 <= len(token) <= 64 else None
    if record is None:
        return web.Response(status=404, text="No such quarantined message.", headers=_PAGE_HEADERS)
    return web.Response(text=render_page(record), content_type="text/html", headers=_PAGE_HEADERS)


def setup_routes(app: web.Application, *, role: str) -> None:
    """The quarantine's routes for ``role``: the notice page for all/proxy, the API for all/proxy/worker."""
    if role in ("all", "proxy"):
        app.router.add_get("/v1/quarantine/{token}", page)
    if role in ("all", "proxy", "worker"):
        app.router.add_get("/api/v1/quarantine", guarded(list_records))
        app.router.add_get("/api/v1/quarantine/{id}", guarded(get_record))
        app.router.add_post("/api/v1/quarantine/{id}/release", guarded(release_record))
