"""Wiring the alert engine to the bot: the engine's ports filled with the bot's functions, its card buttons
registered with the bot, and the engine and its deliveries run for roles all and worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from bot.alert_buttons import card_verbs
from bot.alert_ports import BotEvidence, bot_channel, card_poster
from bot.app import CARD_ACTIONS, TEAMS_OUTBOX
from safelinks.api import ALERTING, setup_api
from shared.alerts import webhooks
from shared.alerts.system import Alerting, build_alerting
from shared.outbox import Outbox
from shared.services import SERVICES, Services
from shared.store.leader import lead_forever
from shared.tasks import stop_tasks


def alerting_for(
    services: Services, outbox: Outbox, *, teams_outbox: Outbox | None = None, register_handlers: bool = True
) -> Alerting:
    return build_alerting(
        services,
        outbox,
        post_card=card_poster(teams_outbox, services.clock),
        evidence=BotEvidence(services.db),
        channel=bot_channel(services.db),
        register_handlers=register_handlers,
    )


ALERT_OUTBOX: web.AppKey[Outbox] = web.AppKey("alert_outbox", Outbox)


def setup_alerting(app: web.Application, *, role: str, poll_interval: float = 0.5) -> None:
    """Mount the REST API and, for roles all and worker, run the alert engine and its deliveries."""
    setup_api(app)
    registry = app.get(CARD_ACTIONS)
    if registry is not None:
        for verb, handler in card_verbs(lambda: app[ALERTING]).items():
            registry.register_verb(verb, handler)
    background = role in ("all", "worker")

    async def running(app: web.Application) -> AsyncIterator[None]:
        services = app[SERVICES]
        outbox = Outbox(services.db, clock=services.clock, metrics=services.metrics, poll_interval=poll_interval,
                        lease_seconds=services.settings.outbox_lease_seconds)
        system = alerting_for(services, outbox, teams_outbox=app.get(TEAMS_OUTBOX), register_handlers=background)
        app[ALERTING] = system
        app[ALERT_OUTBOX] = outbox
        tasks: list[asyncio.Task[None]] = []
        if background:
            await webhooks.drop_stored_secrets(services.db)  # left in queued deliveries by older versions
            system.engine.subscribe(services.bus)
            tasks = [
                # One engine at a time across replicas: each look-back runs once; a standby takes over.
                asyncio.create_task(lead_forever(services.db, "alerts:engine", system.engine.run), name="alert-engine"),
                asyncio.create_task(outbox.run(), name="alert-outbox"),
            ]
        try:
            yield
        finally:
            await stop_tasks(tasks)
            await system.webhooks.close()

    app.cleanup_ctx.append(running)
