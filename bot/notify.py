"""Queueing messages for Teams: every outgoing message goes through the durable outbox (kind ``teams``).

``post_card`` is what the alert engine calls; the bot's own replies use ``enqueue``. Nothing is
sent here: the outbox worker (``bot.delivery``) delivers, keeping Teams' rate limits and retrying.
A card posted under a ``card_key`` that was already posted replaces that message in place.
"""

from __future__ import annotations

from typing import Any

from shared.outbox import Outbox
from shared.store.conversations import SECURITY_CHANNEL, ConversationStore
from shared.store.database import Database, Executor

TEAMS_KIND = "teams"
SECURITY = "security"  # the target that stands for the channel an admin chose with "alerts here"


async def enqueue(outbox: Outbox, *, target: str, card: dict[str, Any] | None = None, text: str | None = None,
                  thread: str | None = None, reply_to: str | None = None, card_key: str | None = None,
                  only_if_posted: bool = False, new_thread: bool = False, tx: Executor | None = None,
                  latest_only: bool = False) -> int | None:
    """Queue one message for the conversation ``target`` (a conversation id the bot knows, or ``SECURITY``).

    ``thread`` is the conversation id to post in (a channel thread), ``reply_to`` the message answered.
    With ``card_key``, a card already posted under that key is edited instead; ``only_if_posted``
    makes it an edit or nothing. ``new_thread`` starts a new post when the target is a channel.
    ``latest_only`` (with ``card_key``) lets this card replace one of the same key still waiting to go.
    """
    if card is None and not text:
        raise ValueError("a Teams message needs a card or a text")
    payload: dict[str, Any] = {"target": target, "card": card, "text": text, "thread": thread,
                               "reply_to": reply_to, "card_key": card_key, "only_if_posted": only_if_posted,
                               "new_thread": new_thread}
    slot = f"card:{card_key}" if latest_only and card_key else None
    return await outbox.enqueue(TEAMS_KIND, payload, key=target.split(";messageid=", 1)[0], tx=tx,
                                dedupe_key=slot, replace_pending=slot is not None)


async def post_card(outbox: Outbox, channel_ref: str, card: dict[str, Any], *, card_key: str,
                    tx: Executor | None = None) -> int | None:
    """Post ``card`` to ``channel_ref`` (``"security"`` or a conversation id); the same ``card_key`` again updates it.

    In a team channel the card starts a new thread; in a chat it is a new message. Enqueued inside
    ``tx`` when given, so the card exists exactly when the caller's transaction commits. A card of the
    same key still waiting to be sent is replaced instead: a storm of updates to one incident makes one
    edit of its latest state, not one per click, and never holds up other incidents' cards.
    """
    return await enqueue(outbox, target=channel_ref, card=card, card_key=card_key, new_thread=True, tx=tx,
                         latest_only=True)


async def security_channel(db: Database) -> str | None:
    """The conversation id of the security channel (set by an admin's ``alerts here``), if any."""
    return await ConversationStore(db).setting(SECURITY_CHANNEL)
