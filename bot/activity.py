"""Our own view of Teams activities: what the handling needs, free of any SDK type.

``bot.adapter`` builds these from the SDK's activities; everything else in ``bot/`` reads only
these. The conversation reference is kept as the plain JSON dict Teams sent, so it can be stored
and handed back to whichever SDK sends the next message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

_THREAD_MARK = ";messageid="


class ConversationType(StrEnum):
    PERSONAL = "personal"
    GROUP_CHAT = "groupChat"
    CHANNEL = "channel"

    @classmethod
    def parse(cls, value: str | None, *, is_group: bool = False, in_channel: bool = False) -> ConversationType:
        if value == "channel" or in_channel:
            return cls.CHANNEL
        if value == "groupChat" or is_group:
            return cls.GROUP_CHAT
        return cls.PERSONAL


@dataclass(frozen=True, slots=True)
class Account:
    """A user or bot as Teams names it: ``id`` is the Teams MRI (``29:…`` users, ``28:…`` bots)."""

    id: str
    name: str = ""
    aad_object_id: str | None = None
    role: str | None = None

    @property
    def is_bot(self) -> bool:
        return self.role == "bot" or self.id.startswith("28:")


@dataclass(frozen=True, slots=True)
class Mention:
    id: str
    name: str
    text: str


@dataclass(frozen=True, slots=True)
class Attachment:
    content_type: str
    content: Any = None
    content_url: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Conversation:
    """Where a message was posted. For channels, ``id`` carries ``;messageid=<root>`` inside a thread."""

    id: str
    type: ConversationType
    tenant_id: str | None = None
    team_id: str | None = None
    team_name: str | None = None
    channel_id: str | None = None
    channel_name: str | None = None
    name: str | None = None
    team_aad_group_id: str | None = None  # the team's id in Microsoft Graph

    @property
    def base_id(self) -> str:
        """The conversation without the thread suffix: the channel or chat itself."""
        return self.id.split(_THREAD_MARK, 1)[0]

    @property
    def thread_root(self) -> str | None:
        _, sep, root = self.id.partition(_THREAD_MARK)
        return (root or None) if sep else None

    @property
    def is_personal(self) -> bool:
        return self.type is ConversationType.PERSONAL


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A message (or its edit or deletion) as the bot received it."""

    id: str
    conversation: Conversation
    sender: Account
    bot: Account
    text: str = ""
    text_format: str = "plain"
    attachments: tuple[Attachment, ...] = ()
    mentions: tuple[Mention, ...] = ()
    reply_to_id: str | None = None
    timestamp: datetime | None = None
    service_url: str = ""
    channel: str = "msteams"
    event_type: str | None = None
    value: dict[str, Any] | None = None
    reference: dict[str, Any] = field(default_factory=dict)

    @property
    def mentions_bot(self) -> bool:
        return any(m.id == self.bot.id for m in self.mentions)

    @property
    def from_bot(self) -> bool:
        """Messages from this bot or any other bot are never handled."""
        return self.sender.is_bot or self.sender.id == self.bot.id

    @property
    def is_html(self) -> bool:
        return self.text_format in ("xml", "html")


@dataclass(frozen=True, slots=True)
class CardAction:
    """An ``Action.Execute`` (Universal Actions) invoke: a button press or a card refresh."""

    verb: str
    data: dict[str, Any]
    user_aad_id: str | None
    user_name: str
    conversation_id: str
    activity_id: str | None
    user_id: str = ""
    trigger: str = "manual"
    tenant_id: str | None = None
    conversation_type: ConversationType = ConversationType.PERSONAL


@dataclass(frozen=True, slots=True)
class MessageAction:
    """A message action (``composeExtension/submitAction``) run on a message: "Report to security".

    ``message_*`` describe the message it was run on (``messagePayload``); ``sender_aad_object_id``
    is the author's Entra object id as the payload gives it.
    """

    command_id: str
    user: Account
    conversation: Conversation
    message_id: str
    message_text: str
    message_format: str
    sender_aad_object_id: str | None
    sender_name: str
    reply_to_id: str | None = None
    created: datetime | None = None
    link_to_message: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Member:
    """A conversation member as the connector describes it."""

    id: str
    aad_object_id: str | None = None
    name: str = ""
    upn: str | None = None
    email: str | None = None
    tenant_id: str | None = None


@dataclass(frozen=True, slots=True)
class Installation:
    """The bot was installed into (``added``) or removed from a conversation."""

    conversation: Conversation
    added: bool
    actor: Account | None
    bot: Account
    reference: dict[str, Any] = field(default_factory=dict)
