"""Mounting the console on the application: its routes, its templates, its state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from importlib import resources

from aiohttp import web
from multidict import CIMultiDict

from console import audit, clicks, demo, feeds, incidents, lists, overview, policies, quarantine, signin, verdicts
from console.oidc import OidcClient
from console.render import Templates, not_found
from console.sessions import Sessions, SignInLinks
from console.state import CONSOLE, Console
from proxy.pages import SECURITY_HEADERS
from shared.services import SERVICES

log = logging.getLogger("safelinks.console")
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".svg": "image/svg+xml"}


def setup_console(app: web.Application) -> None:
    """Add ``/console/``; the services must be set under ``SERVICES`` (and the alerting system) before start."""
    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)
    r = app.router
    r.add_get("/console", _to_console)
    r.add_get("/console/signin", signin.signin_page)
    r.add_post("/console/signin", signin.signin_with_link)
    r.add_post("/console/signout", signin.signout)
    r.add_get("/console/oidc/start", signin.oidc_start)
    r.add_get("/console/oidc/callback", signin.oidc_callback)
    r.add_get("/console/", overview.overview_page)
    r.add_get("/console/alerts", incidents.alerts_page)
    r.add_get("/console/alerts/{id}", incidents.alert_page)
    r.add_get("/console/alerts/{id}/export", incidents.alert_export)
    r.add_get("/console/incidents", incidents.incidents_page)
    r.add_get("/console/incidents/{id}", incidents.incident_page)
    r.add_post("/console/incidents/{id}", incidents.incident_action)
    r.add_get("/console/incidents/{id}/export", incidents.incident_export)
    r.add_get("/console/lists", lists.lists_page)
    r.add_post("/console/lists", lists.add_entry)
    r.add_post("/console/lists/remove", lists.remove_entry)
    r.add_get("/console/clicks", clicks.clicks_page)
    r.add_get(r"/console/clicks/export.{format:csv|jsonl}", clicks.clicks_export)
    r.add_get("/console/quarantine", quarantine.quarantine_page)
    r.add_post("/console/quarantine/{id}/release", quarantine.release)
    r.add_get("/console/verdicts", verdicts.verdicts_page)
    r.add_post("/console/verdicts", verdicts.set_verdict)
    r.add_get("/console/feeds", feeds.feeds_page)
    r.add_post("/console/feeds/update", feeds.update_now)
    r.add_post("/console/feeds/accept", feeds.accept_held)
    r.add_get("/console/policies", policies.policies_page)
    r.add_get("/console/audit", audit.audit_page)
    r.add_get("/console/demo", demo.demo_page)
    r.add_post("/console/demo", demo.post_message)
    r.add_get("/console/static/{name}", _static)


async def _start(app: web.Application) -> None:
    services = app[SERVICES]
    settings = services.settings
    app[CONSOLE] = Console(
        services=services,
        templates=Templates(quarantine=settings.teams_quarantine != "off"),
        links=SignInLinks(services.db),
        sessions=Sessions(services.db, idle_seconds=settings.console_idle_minutes * 60.0,
                          max_seconds=settings.console_session_hours * 3600.0),
        secure_cookie=settings.public_url.startswith("https://"),
        oidc=OidcClient(settings, services.db) if settings.console_oidc_metadata_url else None,
    )
    app[CONSOLE].tasks["warm"] = asyncio.create_task(_warm(app[CONSOLE]), name="console-warm")


async def _warm(console: Console) -> None:
    """Count the past week's clicks per hour once at start, so the first Overview does not wait for it."""
    try:
        await console.hourly.last(console.services.db, console.clock())
    except Exception as exc:  # the Overview counts them itself then
        log.warning("could not count the past week's clicks at start: %s", exc)


async def _stop(app: web.Application) -> None:
    console = app.get(CONSOLE)
    if console is None:
        return
    if isinstance(console.oidc, OidcClient):
        await console.oidc.close()
    for task in console.tasks.values():
        task.cancel()
    for task in console.tasks.values():
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def _to_console(request: web.Request) -> web.StreamResponse:
    raise web.HTTPPermanentRedirect("/console/", headers=CIMultiDict(SECURITY_HEADERS))


async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    suffix = name[name.rfind("."):] if "." in name else ""
    if "/" in name or name.startswith(".") or suffix not in _STATIC_TYPES:
        raise not_found()
    file = resources.files("console").joinpath("static", name)
    if not file.is_file():
        raise not_found()
    headers = CIMultiDict(SECURITY_HEADERS)
    headers["Cache-Control"] = "public, max-age=3600"
    headers.pop("Pragma", None)
    headers["Content-Type"] = _STATIC_TYPES[suffix]
    return web.Response(body=file.read_bytes(), headers=headers)
