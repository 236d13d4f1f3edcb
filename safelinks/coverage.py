"""Wiring coverage into the worker: its Graph client, its own outbox for the installs, and its scheduled job.

The round runs under a scheduler of its own (``shared.schedule``: one worker at a time, once per
interval): a round over a large tenant takes most of an hour, and must not hold up the retention purge.

The installs have an outbox loop of their own (kind ``graph-install`` only), paced at
``SAFELINKS_COVERAGE_RATE``: a round that queues thousands of installs never holds up an alert's
e-mail or a quarantine call behind it. Each claim takes no more than the pace sends within a third
of the lease, so no item waits so long in one worker that another takes it over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from safelinks.quarantine import graph_client, graph_problems
from shared.coverage import Scope
from shared.coverage.service import KIND, Coverage
from shared.graph import GraphClient, GraphError
from shared.outbox import Outbox
from shared.schedule import Scheduler
from shared.services import SERVICES

log = logging.getLogger("safelinks.coverage")
COVERAGE: web.AppKey[Coverage] = web.AppKey("coverage", Coverage)


def setup_coverage(app: web.Application, *, role: str, poll_interval: float = 0.5, tick: float = 30.0) -> None:
    """For roles all and worker with SAFELINKS_COVERAGE on: run the rounds and deliver the installs."""
    if role not in ("all", "worker"):
        return

    async def running(app: web.Application) -> AsyncIterator[None]:
        services = app[SERVICES]
        settings = services.settings
        scope = Scope.parse(settings.coverage, groups=settings.coverage_groups, users=settings.coverage_users,
                            exclude=settings.coverage_exclude)
        if not scope.kinds:
            yield
            return
        for problem in graph_problems(settings):
            log.warning("coverage is on but %s: it cannot install until it is set", problem)
        graph: GraphClient | None = None
        try:
            graph = graph_client(settings)
        except GraphError as exc:
            log.error("Microsoft Graph is not usable, coverage cannot install the app: %s", exc)
        lease = settings.outbox_lease_seconds
        outbox = Outbox(services.db, clock=services.clock, metrics=services.metrics, poll_interval=poll_interval,
                        lease_seconds=lease)
        coverage = Coverage(services.db, outbox, scope, graph=graph, app_external_id=settings.microsoft_app_id,
                            clock=services.clock, catalog_app_id=settings.coverage_catalog_app_id,
                            rsc_consent=settings.coverage_rsc_consent, rate=settings.coverage_rate)
        outbox.register(KIND, coverage.deliver, global_rate=settings.coverage_rate)
        app[COVERAGE] = coverage
        batch = max(1, int(settings.coverage_rate * lease / 3))
        scheduler = Scheduler(services.db, [coverage.job(settings.coverage_every_hours * 3600)],
                              clock=lambda: services.clock().timestamp(), tick=tick)
        tasks = [asyncio.create_task(outbox.run(batch), name="coverage-installs"),
                 asyncio.create_task(scheduler.run(), name="coverage-rounds")]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if graph is not None:
                await graph.close()

    app.cleanup_ctx.append(running)
