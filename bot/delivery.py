"""The outbox handler for kind ``teams``: posts, edits and starts threads through the Bot Connector.

Teams allows 7 messages a second per conversation and about 30 a second per app; the outbox keeps
to both (``per_key_rate``/``global_rate``, the key being the conversation). 429, 412, 502 and 504
(and no answer at all) are retried, honouring Retry-After when the connector sends one; the SDK
itself never retries. A conversation the bot was removed from, or a request Teams rejects as bad,
fails for good and stays visible in ``safelinks outbox list``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.contracts import Posted, TeamsConnector
from bot.errors import ChannelError
from bot.notify import SECURITY, TEAMS_KIND
from shared.outbox import Outbox, PermanentFailure, RetryLater
from shared.store.conversations import SECURITY_CHANNEL, ConversationStore, PostedCard
from shared.store.outbox import OutboxItem

PER_CONVERSATION_RATE = 7.0
GLOBAL_RATE = 30.0
_NO_SECURITY_CHANNEL_RETRY = 300.0


class TeamsDelivery:
    """Delivers ``teams`` outbox items."""

    def __init__(self, connector: TeamsConnector, conversations: ConversationStore,
                 clock: Callable[[], datetime]) -> None:
        self._connector = connector
        self._conversations = conversations
        self._clock = clock

    def register(self, outbox: Outbox) -> None:
        outbox.register(TEAMS_KIND, self.deliver, per_key_rate=PER_CONVERSATION_RATE, global_rate=GLOBAL_RATE)

    async def deliver(self, item: OutboxItem) -> dict[str, Any] | None:
        try:
            return await self._deliver(item.payload)
        except ChannelError as exc:
            if exc.transient or exc.status == 401:
                raise RetryLater(str(exc), exc.retry_after) from exc
            raise PermanentFailure(str(exc)) from exc

    async def _deliver(self, p: dict[str, Any]) -> dict[str, Any] | None:
        target = str(p.get("target") or "")
        if target == SECURITY:
            chosen = await self._conversations.setting(SECURITY_CHANNEL)
            if not chosen:
                raise RetryLater("no security channel yet: an admin says 'alerts here' in one",
                                 _NO_SECURITY_CHANNEL_RETRY)
            target = chosen
        conv = await self._conversations.get(target.split(";messageid=", 1)[0])
        if conv is None or not conv.installed or not conv.reference:
            raise PermanentFailure(f"the bot is not installed in conversation {target}")
        card, text = p.get("card"), p.get("text")
        card_key = p.get("card_key")
        posted = await self._conversations.card(card_key) if card_key else None
        if posted is not None:
            await self._connector.update(conv.reference, conversation_id=posted.conversation_id,
                                         activity_id=posted.activity_id, card=card, text=text)
            await self._conversations.touch_card(posted.card_key, self._clock())
            return {"conversation_id": posted.conversation_id, "activity_id": posted.activity_id, "updated": True}
        if p.get("only_if_posted"):
            return {"skipped": "nothing was posted under this card key"}
        sent: Posted
        if p.get("new_thread") and conv.conversation_type == "channel":
            sent = await self._connector.new_thread(conv.reference, channel_id=conv.channel_id or conv.conversation_id,
                                                    card=card, text=text)
        else:
            sent = await self._connector.send(conv.reference, conversation_id=str(p.get("thread") or target),
                                              card=card, text=text, reply_to_id=p.get("reply_to"))
        if card_key and sent.activity_id:
            await self._conversations.record_card(PostedCard(card_key, sent.conversation_id, sent.activity_id),
                                                  self._clock())
        return {"conversation_id": sent.conversation_id, "activity_id": sent.activity_id, "updated": False}
