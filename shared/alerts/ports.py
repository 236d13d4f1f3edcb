"""What the alert engine needs from the rest of the system, as small protocols.

``shared`` never imports the bot: the process composition (``safelinks/server.py``) wires these to
the bot's functions, and tests may pass their own. Every one of them has a working default, so the
engine runs (without Teams cards or message copies) where no bot is present.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from shared.outbox import Outbox
from shared.store.database import Executor


class CardPoster(Protocol):
    """Posts (or, for a ``card_key`` seen before, updates in place) an Adaptive Card through the outbox."""

    async def __call__(
        self,
        outbox: Outbox,
        channel_ref: str,
        card: dict[str, Any],
        *,
        card_key: str,
        tx: Executor | None = None,
    ) -> None: ...


class EvidenceSource(Protocol):
    """The copies the bot keeps: Teams messages (Graph ``teamsMessageEvidence`` fields) and user names."""

    async def teams_message(self, conversation_id: str | None, message_id: str | None) -> dict[str, Any] | None: ...

    async def display_name(self, aad_object_id: str | None, upn: str | None) -> str | None: ...


# The security channel's reference, as the bot understands it ("alerts here"), or None.
ChannelResolver = Callable[[], Awaitable[str | None]]


class NoEvidence:
    """The default: nothing kept beyond the click's own Teams reference."""

    async def teams_message(self, conversation_id: str | None, message_id: str | None) -> dict[str, Any] | None:
        return None

    async def display_name(self, aad_object_id: str | None, upn: str | None) -> str | None:
        return None


def fixed_channel(channel: str) -> ChannelResolver:
    """A resolver that always answers the configured channel (``SAFELINKS_SECURITY_CHANNEL``)."""

    async def resolve() -> str | None:
        return channel or None

    return resolve


def first_channel(*resolvers: ChannelResolver) -> ChannelResolver:
    """The first resolver's answer that is not None (the bot's stored channel, then the setting)."""

    async def resolve() -> str | None:
        for resolver in resolvers:
            found = await resolver()
            if found:
                return found
        return None

    return resolve
