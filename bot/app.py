"""Mounting the bot on the application: ``POST /api/messages`` and the Teams delivery worker.

The bot shares the application (and its services) with the proxy when the role is ``all``. Its
outgoing messages go through an outbox of its own for kind ``teams``, worked in this process:
several replicas may all work it, claims keep them from sending one message twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from bot import trust
from bot.actions import ActionRegistry
from bot.adapter import BotFrameworkAdapter
from bot.delivery import TeamsDelivery
from bot.handling import MessageHandling
from shared.config import Settings
from shared.outbox import Outbox
from shared.services import SERVICES
from shared.store.conversations import ConversationStore
from shared.tasks import stop_tasks

log = logging.getLogger("safelinks.bot")
ADAPTER: web.AppKey[BotFrameworkAdapter] = web.AppKey("bot_adapter", BotFrameworkAdapter)
CARD_ACTIONS: web.AppKey[ActionRegistry] = web.AppKey("bot_card_actions", ActionRegistry)
HANDLING: web.AppKey[MessageHandling] = web.AppKey("bot_handling", MessageHandling)
TEAMS_OUTBOX: web.AppKey[Outbox] = web.AppKey("bot_teams_outbox", Outbox)

UNAUTHENTICATED_WARNING = (
    "BOT AUTHENTICATION IS OFF: MicrosoftAppId is empty, so /api/messages accepts activities from anyone "
    "without a token (the Bot Framework SDK's local development mode). Set MicrosoftAppId, "
    "MicrosoftAppPassword, MicrosoftAppType and MicrosoftAppTenantId before Teams can reach this endpoint."
)


def setup_bot(app: web.Application, settings: Settings, *, poll_interval: float = 0.5) -> None:
    """Add the Teams bot to ``app``; its services must be opened (under ``SERVICES``) before it starts.

    Raises ``trust.UnsafeStart`` when the bot would run unauthenticated beyond loopback without
    ``SAFELINKS_ALLOW_UNAUTHENTICATED_BOT=true``.
    """
    trust.check_start(settings)
    adapter = BotFrameworkAdapter(settings)
    app[ADAPTER] = adapter
    app[CARD_ACTIONS] = ActionRegistry()
    app.router.add_post("/api/messages", adapter.handle)

    async def running(app: web.Application) -> AsyncIterator[None]:
        services = app[SERVICES]
        if not adapter.authenticated:
            log.warning(UNAUTHENTICATED_WARNING)
        else:
            log.info("bot authentication on for app %s (%s)", settings.microsoft_app_id, settings.microsoft_app_type)
        mode, tenants = trust.describe(settings)
        if trust.mode(settings) == "open":
            log.warning("bot: %s", mode)
        (log.info if settings.tenant_ids else log.warning)("bot %s", tenants)
        outbox = Outbox(services.db, clock=services.clock, metrics=services.metrics, poll_interval=poll_interval,
                        lease_seconds=services.settings.outbox_lease_seconds)
        handling = MessageHandling(services, outbox, adapter, app[CARD_ACTIONS])
        TeamsDelivery(adapter, ConversationStore(services.db), services.clock).register(outbox)
        adapter.attach(handling)
        app[HANDLING] = handling
        app[TEAMS_OUTBOX] = outbox
        worker = asyncio.create_task(outbox.run(), name="teams-outbox")
        try:
            yield
        finally:
            await stop_tasks([worker])

    app.cleanup_ctx.append(running)
