"""Wiring the alert engine to the bot: cards through the bot's sender, its message copies, its buttons.

``shared.alerts`` knows the bot only through small protocols; this module is where the process
composition fills them with the bot's functions (``bot.notify.post_card``, the stored security
channel, the evidence store) and registers the ``alert.*`` card verbs with the bot.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot import notify
from bot.activity import CardAction
from bot.errors import BotError
from shared.alerts import webhooks
from shared.alerts.actions import Actor, Changes, same_conversation
from shared.alerts.cards import VERBS
from shared.alerts.errors import AlertError
from shared.alerts.ports import CardPoster, ChannelResolver
from shared.alerts.service import Alerting, build_alerting
from shared.alerts.writer import card_key
from shared.outbox import Outbox
from shared.services import SERVICES, Services
from shared.store.database import Database, Executor
from shared.store.evidence import ConversationStore, EvidenceStore
from shared.store.leader import lead_forever
from shared.tabl import TablAction
from shared.tasks import stop_tasks


class CardActionRefused(BotError):
    """A card button could not be honoured (not allowed, or the alert is gone); the text says why."""


class BotEvidence:
    """The bot's copies: Teams messages as Graph evidence, people's display names."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._messages = EvidenceStore(db)

    async def teams_message(self, conversation_id: str | None, message_id: str | None) -> dict[str, Any] | None:
        if not conversation_id or not message_id:
            return None
        found = await self._messages.get(conversation_id, message_id)
        return found.to_graph() if found else None

    async def display_name(self, aad_object_id: str | None, upn: str | None) -> str | None:
        if not aad_object_id and not upn:
            return None
        row = await self._db.fetchone(
            "SELECT name FROM teams_users WHERE (aad_object_id = ? OR LOWER(upn) = ?) AND name <> '' LIMIT 1",
            (aad_object_id or "", (upn or "").lower()),
        )
        return str(row["name"]) if row else None


def bot_channel(db: Database) -> ChannelResolver:
    async def resolve() -> str | None:
        return await notify.security_channel(db)

    return resolve


def card_poster(teams_outbox: Outbox | None, clock: Any = None) -> CardPoster:
    """The bot's ``post_card``, coalescing: a card still waiting to be sent is replaced, not queued again.

    Teams takes about 7 messages a second per conversation; an incident that gains alerts faster
    than that would otherwise queue one edit per alert, each already stale when sent. Replacing
    the waiting (unclaimed) item keeps one pending message per card that always holds the newest
    state. The bot's sender is woken when it runs in this process.
    """

    async def post(
        outbox: Outbox, channel_ref: str, card: dict[str, Any], *, card_key: str, tx: Executor | None = None
    ) -> None:
        if tx is not None and await _replace_waiting(tx, channel_ref, card, card_key, clock):
            return
        await notify.post_card(outbox, channel_ref, card, card_key=card_key, tx=tx)
        if teams_outbox is not None:
            teams_outbox.wake()

    return post


async def _replace_waiting(tx: Executor, channel_ref: str, card: dict[str, Any], card_key: str, clock: Any) -> bool:
    now = (clock() if clock is not None else datetime.now(UTC)).timestamp()
    key = channel_ref.split(";messageid=", 1)[0]
    rows = await tx.fetchall(
        "SELECT id, payload FROM outbox WHERE kind = ? AND key = ? AND status = 'pending' "
        "AND lease_until <= ? ORDER BY id DESC LIMIT 50",
        (notify.TEAMS_KIND, key, now),
    )
    for row in rows:
        payload = json.loads(row["payload"])
        if payload.get("card_key") != card_key:
            continue
        payload["card"] = card
        changed = await tx.execute(
            "UPDATE outbox SET payload = ? WHERE id = ? AND status = 'pending' AND lease_until <= ?",
            (json.dumps(payload, separators=(",", ":")), row["id"], now),
        )
        return bool(changed)
    return False


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


async def _bind_to_card(system: Alerting, action: CardAction, alert_id: int) -> None:
    """The button must be pressed on the card we posted for this alert's incident, where it was posted.

    The ids in a card's data are only what the client sent back: an alert id copied onto another
    card, or an invoke made up with any ids, must not act on an alert that card does not show.
    """
    alert = await system.writer.alerts.get(alert_id)
    posted = None
    if alert is not None and alert.incident_id is not None:
        posted = await ConversationStore(system.writer.db).card(card_key(alert.incident_id))
    if (posted is None or not action.activity_id or posted.activity_id != action.activity_id
            or not same_conversation(posted.conversation_id, action.conversation_id)):
        raise CardActionRefused("this button does not belong to this alert's card; use the card of the alert")


async def _identity(db: Database, action: CardAction) -> str:
    """Who pressed, as an identity (UPN when the bot knows it, else the Entra object id), never a display name."""
    if action.user_aad_id:
        row = await db.fetchone("SELECT upn FROM teams_users WHERE aad_object_id = ? AND upn <> '' LIMIT 1",
                                (action.user_aad_id,))
        return str(row["upn"]).lower() if row and row["upn"] else action.user_aad_id
    return action.user_id


def card_verbs(get: Any) -> dict[str, Any]:
    """Handlers for the alert card's buttons; ``get()`` gives the running ``Alerting``."""

    async def act(action: CardAction) -> dict[str, Any] | None:
        system: Alerting = get()
        data = action.data or {}
        try:
            await system.actions.authorize(action.user_aad_id or "", action.conversation_id)
            alert_id = int(data["alert_id"])
            await _bind_to_card(system, action, alert_id)
            actor = Actor(action.user_aad_id or action.user_id, action.user_name, via="card")
            if action.verb == "alert.resolve":
                await system.actions.update_alert(alert_id, Changes(status="resolved"), actor)
            elif action.verb == "alert.classify":
                await system.actions.update_alert(alert_id, Changes(classification=str(data["classification"])), actor)
            elif action.verb == "alert.assign":
                assignee = await _identity(system.writer.db, action)
                await system.actions.update_alert(alert_id, Changes(status="inProgress", assigned_to=assignee), actor)
            elif action.verb == "alert.block":
                await system.actions.set_url_list(alert_id, TablAction.BLOCK, actor)
            elif action.verb == "alert.allow":
                await system.actions.set_url_list(alert_id, TablAction.ALLOW, actor)
            rows = await system.writer.alerts.actions(alert_id=alert_id)
            note = None
            if rows:
                last = rows[-1]
                note = f"{last['actor_name'] or last['actor']}: {last['verb']} {last['detail']}".strip()
            return await system.actions.card_for(alert_id, note)
        except (KeyError, ValueError, TypeError):
            raise CardActionRefused("this card is missing the alert it belongs to") from None
        except AlertError as exc:
            raise CardActionRefused(str(exc)) from None

    return dict.fromkeys(VERBS, act)


ALERT_OUTBOX: web.AppKey[Outbox] = web.AppKey("alert_outbox", Outbox)


def setup_alerting(app: web.Application, *, role: str, poll_interval: float = 0.5) -> None:
    """Mount the REST API and, for roles all and worker, run the alert engine and its deliveries."""
    from bot.app import CARD_ACTIONS, TEAMS_OUTBOX
    from safelinks.api import ALERTING, setup_api

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
