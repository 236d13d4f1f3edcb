"""Card buttons (Universal Actions ``Action.Execute``): a registry of verbs and their handlers.

A handler gets a ``CardAction`` and returns the card that replaces the pressed one, or None to leave
it as it is. The alert engine registers ``alert.resolve``, ``alert.classify`` and the like; the bot
registers its own viewer refresh.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from bot.activity import CardAction
from bot.contracts import InvokeResult
from bot.errors import BotError

log = logging.getLogger("safelinks.bot")
VerbHandler = Callable[[CardAction], Awaitable[dict[str, Any] | None]]
_VERB = re.compile(r"^[A-Za-z][\w.\-]{0,63}$")


class ActionError(BotError):
    """A verb is malformed or registered twice."""


class ActionRegistry:
    """Verbs and their handlers, for one running bot."""

    def __init__(self) -> None:
        self._handlers: dict[str, VerbHandler] = {}

    def register_verb(self, verb: str, handler: VerbHandler) -> None:
        if not _VERB.match(verb):
            raise ActionError(f"card verb {verb!r} must be a letter followed by letters, digits, '.', '_' or '-'")
        if verb in self._handlers and self._handlers[verb] is not handler:
            raise ActionError(f"card verb {verb!r} is already registered")
        self._handlers[verb] = handler

    @property
    def verbs(self) -> list[str]:
        return sorted(self._handlers)

    async def dispatch(self, action: CardAction) -> InvokeResult:
        handler = self._handlers.get(action.verb)
        if handler is None:
            return InvokeResult(status=400, error_code="BadRequest", message=f"unknown action {action.verb!r}")
        try:
            card = await handler(action)
        except BotError as exc:
            return InvokeResult(status=400, error_code="BadRequest", message=str(exc))
        except Exception:
            log.exception("card action %s failed", action.verb)
            return InvokeResult(status=500, error_code="InternalError", message="the action failed; try again")
        if card is None:
            return InvokeResult(message="Done.")
        return InvokeResult(card=card)
