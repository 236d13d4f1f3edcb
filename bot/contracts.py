"""The two seams between the SDK adapter and our handling: what comes in, and what goes out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from bot.activity import CardAction, IncomingMessage, Installation, Member, MessageAction

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"


@dataclass(frozen=True, slots=True)
class Posted:
    """Where the connector put a message: the conversation (a new thread has its own) and the activity id."""

    conversation_id: str
    activity_id: str


@dataclass(frozen=True, slots=True)
class InvokeResult:
    """The answer to an invoke: a card that replaces the one pressed, a message, or an error."""

    status: int = 200
    card: dict[str, Any] | None = None
    message: str | None = None
    error_code: str | None = None

    def body(self) -> dict[str, Any]:
        """The Universal Actions response body (``adaptiveCard/action``)."""
        if self.error_code:
            return {"statusCode": self.status, "type": "application/vnd.microsoft.error",
                    "value": {"code": self.error_code, "message": self.message or ""}}
        if self.card is not None:
            return {"statusCode": 200, "type": CARD_CONTENT_TYPE, "value": self.card}
        return {"statusCode": 200, "type": "application/vnd.microsoft.activity.message",
                "value": self.message or ""}


@dataclass(frozen=True, slots=True)
class TaskReply:
    """The answer to a message action: a short message shown in Teams' dialog."""

    message: str

    def body(self) -> dict[str, Any]:
        return {"task": {"type": "message", "value": self.message}}


class TeamsConnector(Protocol):
    """Outgoing calls to the Bot Connector; failures raise ``bot.errors.ChannelError``."""

    async def send(self, reference: dict[str, Any], *, conversation_id: str, card: dict[str, Any] | None,
                   text: str | None, reply_to_id: str | None) -> Posted:
        """Post a message (a reply when ``reply_to_id`` is given)."""
        ...

    async def update(self, reference: dict[str, Any], *, conversation_id: str, activity_id: str,
                     card: dict[str, Any] | None, text: str | None) -> None:
        """Replace a message the bot posted earlier."""
        ...

    async def new_thread(self, reference: dict[str, Any], *, channel_id: str, card: dict[str, Any] | None,
                         text: str | None) -> Posted:
        """Start a new top-level post in a team channel (``reference``: any conversation of that team)."""
        ...

    async def member(self, reference: dict[str, Any], *, conversation_id: str, user_id: str) -> Member | None:
        """One member of a conversation (None if not a member)."""
        ...

    async def members(self, reference: dict[str, Any], *, conversation_id: str, limit: int) -> list[Member] | None:
        """The members of a conversation, or None when there are more than ``limit``."""
        ...


class BotLogic(Protocol):
    """What the adapter calls for each kind of incoming activity."""

    async def on_message(self, message: IncomingMessage) -> None: ...

    async def on_message_edit(self, message: IncomingMessage) -> None: ...

    async def on_message_delete(self, message: IncomingMessage) -> None: ...

    async def on_message_undelete(self, message: IncomingMessage) -> None: ...

    async def on_installation(self, installation: Installation) -> None: ...

    async def on_card_action(self, action: CardAction) -> InvokeResult: ...

    async def on_message_action(self, action: MessageAction) -> TaskReply: ...
