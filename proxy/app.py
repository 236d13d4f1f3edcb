"""Mounting the proxy's routes on an application (the process composition owns the application)."""

from __future__ import annotations

from aiohttp import web

from proxy import routes
from proxy.pages import Pages
from proxy.verified import VerifiedLinks
from shared.clicks import ReportIds
from shared.metrics import Histogram
from shared.services import SERVICES


def setup_proxy(app: web.Application) -> None:
    """Add the click-time proxy to ``app``; its services must be set under ``SERVICES`` before start."""
    app[routes.PAGES] = Pages()
    app[routes.REPORT_IDS] = ReportIds()
    app[routes.LATENCY] = Histogram("safelinks_click_seconds", "Time to answer a click, recording included.")
    app.on_startup.append(_start)
    app.router.add_get("/v1/url", routes.click)  # add_get also routes HEAD here: answered as a non-click
    app.router.add_route("POST", "/v1/url/continue", routes.click_through)
    app.router.add_route("GET", "/v1/url/continue", routes.continue_get)
    app.router.add_route("GET", "/v1/back", routes.back)
    app.router.add_route("GET", "/v1/static/{name}", routes.static)
    app.router.add_route("GET", "/healthz", routes.healthz)
    app.router.add_route("GET", "/metrics", routes.metrics)


async def _start(app: web.Application) -> None:
    services = app[SERVICES]
    app[routes.LINKS] = VerifiedLinks(services.signer)
    services.metrics.register(app[routes.LATENCY])
