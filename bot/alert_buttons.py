"""The alert card's buttons (resolve, classify, assign, block, allow), pressed in Teams."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.activity import CardAction
from bot.errors import BotError
from shared.alerts.actions import Actor, Changes, same_conversation
from shared.alerts.cards import VERBS
from shared.alerts.errors import AlertError
from shared.alerts.system import Alerting
from shared.alerts.writer import card_key
from shared.store.conversations import ConversationStore
from shared.store.database import Database
from shared.urllists.tenant_list import TablAction


class CardActionRefused(BotError):
    """A card button could not be honoured (not allowed, or the alert is gone); the text says why."""


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
        return await ConversationStore(db).upn_of(action.user_aad_id) or action.user_aad_id
    return action.user_id


def card_verbs(get: Callable[[], Alerting]) -> dict[str, Any]:
    """Handlers for the alert card's buttons; ``get()`` gives the running ``Alerting``."""

    async def act(action: CardAction) -> dict[str, Any] | None:
        system = get()
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
