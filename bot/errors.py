"""The bot's exception tree: everything the bot raises on purpose derives from ``BotError``."""

from __future__ import annotations

from shared.errors import SafeLinksError


class BotError(SafeLinksError):
    """Base of the bot's errors."""


class BadActivity(BotError):
    """An incoming activity is malformed (missing conversation, unreadable card, ...)."""


class ChannelError(BotError):
    """The Bot Connector refused or failed a call; ``status`` is its HTTP status (0: no answer)."""

    def __init__(self, message: str, *, status: int = 0, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """Teams asks for a retry on 429, 412, 502 and 504; no answer at all or a 5xx is worth another try."""
        return self.status in (0, 408, 412, 429, 500, 502, 503, 504)


class UnknownConversation(BotError):
    """A message is addressed to a conversation the bot holds no reference for."""


class AuthenticationFailed(BotError):
    """An inbound request's token is missing, forged, expired or not endorsed for the channel."""


class ActionRefused(BotError):
    """A card action was pressed where it does not belong (another conversation's card, say)."""
