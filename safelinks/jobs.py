"""Scheduled jobs of the worker role: each runs once per interval across all workers (``shared.schedule``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from shared.privacy import RetentionPolicy, retention_job
from shared.schedule import Scheduler
from shared.services import SERVICES
from shared.tasks import stop_tasks

SCHEDULER: web.AppKey[Scheduler] = web.AppKey("scheduler", Scheduler)


def setup_jobs(app: web.Application, *, tick: float = 30.0) -> None:
    """Run the retention purge (and any later scheduled job) in this process, under a leader per job."""

    async def running(app: web.Application) -> AsyncIterator[None]:
        services = app[SERVICES]
        settings = services.settings
        jobs = [retention_job(services.db, RetentionPolicy.from_settings(settings), services.clock,
                              every=timedelta(hours=settings.retention_every_hours))]
        scheduler = Scheduler(services.db, jobs, clock=lambda: services.clock().timestamp(), tick=tick)
        app[SCHEDULER] = scheduler
        task = asyncio.create_task(scheduler.run(), name="scheduler")
        try:
            yield
        finally:
            await stop_tasks([task])

    app.cleanup_ctx.append(running)
