"""Commands: ``help``, ``check <url>``, and for admins ``alerts here`` and ``status``.

In channels and group chats a command is a message that @mentions the bot; in a personal chat
it is the plain text. Admins are the AAD object ids in ``SAFELINKS_ADMINS``, matched against the
sender Teams vouched for; where nothing vouches for it (``bot.trust``: unauthenticated beyond
loopback) nobody is an admin through the bot.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from bot import cards, trust
from bot.activity import ConversationType, IncomingMessage
from bot.notify import TEAMS_KIND
from shared.alerts.actions import Actor
from shared.outbox import Outbox
from shared.services import Services
from shared.store.conversations import SECURITY_CHANNEL, ConversationStore
from shared.store.messages import EvidenceStore
from shared.urls import InvalidURL, canonicalize, extract_urls, unwrap

COMMANDS = ("help", "check", "alerts", "status")
@dataclass(frozen=True, slots=True)
class Command:
    name: str
    argument: str


def parse_command(message: IncomingMessage, visible: str) -> Command | None:
    """The command in a message, or None when it is an ordinary message."""
    if not message.conversation.is_personal and not message.mentions_bot:
        return None
    words = visible.split(None, 1)
    if not words:
        return None
    name = words[0].lower().rstrip(":,.!")
    argument = words[1].strip() if len(words) > 1 else ""
    if name not in COMMANDS:
        return None
    if name == "alerts" and argument.lower().rstrip(".!") != "here":
        return None
    if name in ("help", "status") and argument:
        return None
    return Command(name, argument)


class Reply(Protocol):
    """Answer a message in its thread, with a card or a line of text."""

    def __call__(self, message: IncomingMessage, *, card: dict[str, Any] | None = None,
                 text: str | None = None) -> Awaitable[None]: ...


class Commands:
    """Runs a parsed command with what commands use: the services, the bot's stores, the outbox and a reply."""

    def __init__(self, services: Services, conversations: ConversationStore, evidence: EvidenceStore,
                 outbox: Outbox, reply: Reply) -> None:
        self._services = services
        self._conversations = conversations
        self._evidence = evidence
        self._outbox = outbox
        self._reply = reply

    def _is_admin(self, message: IncomingMessage) -> bool:
        settings = self._services.settings
        if not trust.claims_trusted(settings):
            return False
        admins = {a.lower() for a in settings.admins}
        return bool(message.sender.aad_object_id) and str(message.sender.aad_object_id).lower() in admins

    async def run(self, command: Command, message: IncomingMessage) -> None:
        if command.name == "help":
            await self._reply(message, card=cards.notice_card("What I can do", cards.HELP_LINES))
        elif command.name == "check":
            await self._reply(message, card=await self._check(command.argument, message))
        elif not self._is_admin(message):
            await self._reply(message, text="Only Safe Links admins can do that.")
        elif command.name == "alerts":
            await self._alerts_here(message)
        else:
            await self._reply(message, card=await self._status())

    async def _check(self, argument: str, message: IncomingMessage) -> dict[str, Any]:
        found = extract_urls(argument, html="<" in argument)
        if not found:
            return cards.notice_card("That is not a web link I can check", ["Try: check https://example.com/page"],
                                     color="Warning")
        target = unwrap(found[0])
        try:
            canonical = canonicalize(target)
        except InvalidURL as exc:
            return cards.notice_card("That is not a web link I can check", [str(exc)], color="Warning")
        try:
            result = await self._services.verdicts.check(target)
        except Exception as exc:  # report it rather than fail the command
            return cards.notice_card("The check failed", [f"{type(exc).__name__}: {exc}"], color="Warning")
        facts = [("Link", cards.host_of(target)), ("Verdict", result.verdict.value), ("Source", result.source)]
        if target != found[0]:
            facts.append(("Unwrapped from", cards.host_of(found[0])))
        if result.threat_types:
            facts.append(("Threats", ", ".join(result.threat_types)))
        if result.expression:
            facts.append(("Matched", result.expression))
        facts.append(("Canonical form", canonical))
        lines = [f"Why: {reason}" for reason in result.reasons] or ["Why: no source has an opinion on it yet."]
        color = "Attention" if result.verdict.risky else "Default"
        return cards.facts_card(f"{cards.host_of(target)}: {result.verdict.value}", facts, lines, color=color)

    async def _alerts_here(self, message: IncomingMessage) -> None:
        conv = message.conversation
        if conv.type is ConversationType.PERSONAL:
            await self._reply(message, text="Say **alerts here** in the team channel or group chat meant for alerts.")
            return
        now = self._services.clock()
        sender = message.sender
        await self._conversations.set_setting(
            SECURITY_CHANNEL, conv.base_id, now, sender.aad_object_id,
            actor=Actor(sender.aad_object_id or sender.id, sender.name or "", via="bot"))
        where = f"{conv.team_name or 'this team'} / {conv.channel_name or 'this channel'}" \
            if conv.type is ConversationType.CHANNEL else (conv.name or "this chat")
        await self._reply(message, card=cards.notice_card(
            "Security alerts will be posted here", [f"Alert cards now go to {where}."], color="Good"))

    async def _status(self) -> dict[str, Any]:
        settings = self._services.settings
        since = self._services.clock() - timedelta(hours=24)
        security = await self._conversations.setting(SECURITY_CHANNEL)
        pending = [i for i in await self._outbox.list("pending") if i.kind == TEAMS_KIND]
        failed = [i for i in await self._outbox.list("failed") if i.kind == TEAMS_KIND]
        health = self._services.verdicts.health_report()
        sources = ", ".join(f"{name} {'ok' if s['ok'] else 'failing'}" for name, s in health.items()) or "none"
        facts = [
            ("Identity", f"app {settings.microsoft_app_id} ({settings.microsoft_app_type})"
             if settings.microsoft_app_id else "none: local unauthenticated mode"),
            ("Security channel", security or "not set (say 'alerts here' in one)"),
            ("Installed in", f"{len(await self._conversations.installed())} conversations"),
            ("Messages with links, 24 h", str(await self._evidence.count_since(since))),
            ("Teams messages waiting", str(len(pending))),
            ("Teams messages failed", str(len(failed))),
            ("Verdict sources", sources),
            ("Links point to", settings.public_url),
        ]
        return cards.facts_card("Safe Links status", facts)
