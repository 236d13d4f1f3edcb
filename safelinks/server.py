"""The application factory that ``safelinks serve`` and the tests share.

One process runs every role by default; ``--role`` splits them. The proxy role serves clicks; the bot
role serves ``/api/messages``; the worker role runs background jobs (alerts, deliveries, feeds); the console
role serves the analyst console (``/console/``).
Every role opens the same services on the same store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web

from proxy.app import setup_proxy
from safelinks.legal import setup_legal
from safelinks.logs import request_ids, wants_request_ids
from shared.config import Role, Settings
from shared.services import SERVICES, Clock, Services, open_services, utc_now
from shared.tasks import stop_tasks
from shared.verdicts.model import VerdictProvider

log = logging.getLogger("safelinks")
RoleSetup = Callable[[web.Application, Settings], None]


def create_app(
    settings: Settings,
    *,
    role: Role | None = None,
    clock: Clock = utc_now,
    providers: Sequence[VerdictProvider] = (),
    refresh_every: float = 2.0,
) -> web.Application:
    """Build the application for ``role`` (default: the configured one)."""
    role = role or settings.role
    # aiohttp refuses request lines over 8 KB before any handler runs; allow more so an over-long
    # wrapped link gets our own 414 page instead of a bare 400.
    # Request ids cost a middleware on every request (a few µs a click): only when the logs use them.
    middlewares = [request_ids] if wants_request_ids(settings) else []
    app = web.Application(client_max_size=1024 * 1024, middlewares=middlewares,
                          handler_args={"max_line_size": 64 * 1024, "max_field_size": 16 * 1024})

    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_services(settings, clock=clock, providers=providers,
                                 refresh_every=refresh_every) as services:
            app[SERVICES] = services
            yield

    app.cleanup_ctx.append(services_ctx)
    app.cleanup_ctx.append(_verdict_source_loops(feeds=role in ("all", "worker")))
    if role in ("all", "proxy"):
        setup_proxy(app)
    else:
        # Every role answers health checks, so a load balancer can watch it.
        from proxy import routes

        app.router.add_get("/healthz", routes.healthz)
        app.router.add_get("/metrics", routes.metrics)
    setup_legal(app, settings)  # the manifest's privacy and terms links, whichever role answers them
    if role in ("all", "bot"):
        from bot.app import setup_bot

        setup_bot(app, settings)
    if role in ("all", "proxy", "worker", "console"):
        from safelinks.alerting import setup_alerting

        setup_alerting(app, role=role)
    from safelinks.quarantine import setup_quarantine
    from safelinks.quarantine_http import setup_routes as setup_quarantine_routes

    setup_quarantine(app, role=role)
    setup_quarantine_routes(app, role=role)
    if role in ("all", "worker"):
        from safelinks.coverage import setup_coverage
        from safelinks.jobs import setup_jobs

        setup_coverage(app, role=role)
        setup_jobs(app)
    if role in ("all", "console"):
        from console.app import setup_console

        setup_console(app)
    return app


def _verdict_source_loops(*, feeds: bool) -> Callable[[web.Application], AsyncIterator[None]]:
    """Every role keeps its per-process sources current; the worker role also updates the feeds."""

    async def loops(app: web.Application) -> AsyncIterator[None]:
        sources = app[SERVICES].sources
        tasks = [asyncio.create_task(loop, name="verdict-source")
                 for loop in (sources.background(feeds=feeds) if sources else [])]
        try:
            yield
        finally:
            await stop_tasks(tasks)

    return loops


def services_of(app: web.Application) -> Services:
    return app[SERVICES]
