"""The bot's side of the alert engine's ports: its message copies as evidence, its stored security
channel, and posting alert cards through its sender (``shared.alerts.ports`` declares what is needed)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bot import notify
from shared.alerts.ports import CardPoster, ChannelResolver
from shared.outbox import Outbox
from shared.store.conversations import ConversationStore
from shared.store.database import Database, Executor
from shared.store.messages import EvidenceStore


class BotEvidence:
    """The bot's copies: Teams messages as Graph evidence, people's display names."""

    def __init__(self, db: Database) -> None:
        self._messages = EvidenceStore(db)
        self._people = ConversationStore(db)

    async def teams_message(self, conversation_id: str | None, message_id: str | None) -> dict[str, Any] | None:
        if not conversation_id or not message_id:
            return None
        found = await self._messages.get(conversation_id, message_id)
        return found.to_graph() if found else None

    async def display_name(self, aad_object_id: str | None, upn: str | None) -> str | None:
        if not aad_object_id and not upn:
            return None
        return await self._people.display_name(aad_object_id, upn)


def bot_channel(db: Database) -> ChannelResolver:
    async def resolve() -> str | None:
        return await notify.security_channel(db)

    return resolve


def card_poster(teams_outbox: Outbox | None, clock: Callable[[], datetime] | None = None) -> CardPoster:
    """The bot's ``post_card``, coalescing: a card still waiting to be sent is replaced, not queued again.

    Teams takes about 7 messages a second per conversation; an incident that gains alerts faster
    than that would otherwise queue one edit per alert, each already stale when sent. Replacing
    the waiting (unclaimed) item keeps one pending message per card that always holds the newest
    state. The bot's sender is woken when it runs in this process.
    """

    async def post(
        outbox: Outbox, channel_ref: str, card: dict[str, Any], *, card_key: str, tx: Executor | None = None
    ) -> None:
        if tx is not None and await _replace_waiting(outbox, tx, channel_ref, card, card_key, clock):
            return
        await notify.post_card(outbox, channel_ref, card, card_key=card_key, tx=tx)
        if teams_outbox is not None:
            teams_outbox.wake()

    return post


async def _replace_waiting(outbox: Outbox, tx: Executor, channel_ref: str, card: dict[str, Any], card_key: str,
                           clock: Callable[[], datetime] | None) -> bool:
    def newest_card(payload: dict[str, Any]) -> bool:
        if payload.get("card_key") != card_key:
            return False
        payload["card"] = card
        return True

    now = (clock() if clock is not None else datetime.now(UTC)).timestamp()
    key = channel_ref.split(";messageid=", 1)[0]
    return await outbox.edit_waiting(tx, notify.TEAMS_KIND, key, newest_card, now=now)
