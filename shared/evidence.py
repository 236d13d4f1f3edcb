"""Teams message evidence: a message the bot saw, kept for alerts in the shape of Graph's ``teamsMessageEvidence``.

Field names follow Microsoft Graph security ``teamsMessageEvidence`` where the Bot Framework
activity provides the value (``messageId``, ``parentMessageId``, ``threadId``, ``threadType``,
``groupId``, ``channelId``, ``owningTenantId``, ``senderFromAddress``, ``receivedDateTime``,
``lastModifiedDateTime``, ``urls``, ``isExternal``, ``isOwned``, ``subject``). What Graph has no
field for (team and channel names, the sender's object id, the conversation id, the snippet, the
deep link, deletion) is exported under ``safelinks``-prefixed names, so a Graph consumer can ignore it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from shared.errors import SafeLinksError

ODATA_TYPE = "#microsoft.graph.security.teamsMessageEvidence"
_DEEP_LINK = "https://teams.microsoft.com/l/message/"


class EvidenceError(SafeLinksError, ValueError):
    """An evidence record cannot be built or read (missing ids, unreadable stored value)."""


@dataclass(frozen=True, slots=True)
class TeamsMessageEvidence:
    """One Teams message that carried links, as the bot saw it."""

    conversation_id: str
    message_id: str
    thread_id: str
    thread_type: str  # "Chat" (personal and group chats) or "Topic" (channel posts and replies)
    thread_sub_type: str  # the Teams conversation type: personal, groupChat, channel
    received_at: datetime
    urls: tuple[str, ...]
    parent_message_id: str | None = None
    tenant_id: str | None = None
    team_id: str | None = None
    team_name: str | None = None
    channel_id: str | None = None
    channel_name: str | None = None
    sender_aad_object_id: str | None = None
    sender_id: str | None = None
    sender_name: str | None = None
    sender_upn: str | None = None
    sender_tenant_id: str | None = None
    is_external: bool = False
    snippet: str = ""
    subject: str | None = None
    modified_at: datetime | None = None
    deleted_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.conversation_id or not self.message_id:
            raise EvidenceError("Teams message evidence needs a conversation id and a message id")

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def web_url(self) -> str:
        """The Teams deep link that opens the message."""
        link = f"{_DEEP_LINK}{quote(self.thread_id, safe='')}/{quote(self.message_id, safe='')}"
        params: list[str] = []
        if self.tenant_id:
            params.append(f"tenantId={quote(self.tenant_id, safe='')}")
        if self.thread_sub_type == "channel":
            if self.team_id:
                params.append(f"groupId={quote(self.team_id, safe='')}")
            params.append(f"parentMessageId={quote(self.parent_message_id or self.message_id, safe='')}")
            if self.team_name:
                params.append(f"teamName={quote(self.team_name, safe='')}")
            if self.channel_name:
                params.append(f"channelName={quote(self.channel_name, safe='')}")
        else:
            params.append("context=" + quote('{"contextType":"chat"}', safe=""))
        params.append(f"createdTime={int(self.received_at.timestamp() * 1000)}")
        return link + "?" + "&".join(params)

    def edited(self, *, urls: tuple[str, ...], snippet: str, at: datetime) -> TeamsMessageEvidence:
        return replace(self, urls=urls, snippet=snippet, modified_at=at)

    def to_graph(self) -> dict[str, Any]:
        """The Graph ``teamsMessageEvidence`` JSON object (with the ``safelinks``-prefixed extras)."""
        sender: dict[str, Any] | None = None
        if self.sender_name or self.sender_upn:
            sender = {
                "displayName": self.sender_name,
                "emailAddress": self.sender_upn,
                "domainName": self.sender_upn.rpartition("@")[2] if self.sender_upn else None,
            }
        return {
            "@odata.type": ODATA_TYPE,
            "createdDateTime": _iso(self.received_at),
            "messageId": self.message_id,
            "parentMessageId": self.parent_message_id or self.message_id,
            "threadId": self.thread_id,
            "threadType": self.thread_type,
            "threadSubType": self.thread_sub_type,
            "groupId": self.team_id,
            "channelId": self.channel_id,
            "owningTenantId": self.tenant_id,
            "senderFromAddress": sender,
            "receivedDateTime": _iso(self.received_at),
            "lastModifiedDateTime": _iso(self.modified_at or self.received_at),
            "urls": list(self.urls),
            "isExternal": self.is_external,
            "isOwned": not self.is_external,
            "subject": self.subject,
            "deliveryAction": "delivered",
            "deliveryLocation": "teams",
            "messageDirection": "inbound" if self.is_external else "intraorg",
            "safelinksConversationId": self.conversation_id,
            "safelinksTeamName": self.team_name,
            "safelinksChannelName": self.channel_name,
            "safelinksSenderAadObjectId": self.sender_aad_object_id,
            "safelinksSnippet": self.snippet,
            "safelinksWebUrl": self.web_url,
            "safelinksDeletedDateTime": _iso(self.deleted_at) if self.deleted_at else None,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_graph(), separators=(",", ":"))


def snippet_of(text: str, limit: int) -> str:
    """The first ``limit`` characters of the visible text, whitespace collapsed; 0 keeps nothing."""
    if limit <= 0:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: max(0, limit - 1)] + "…"


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
