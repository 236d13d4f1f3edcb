"""What the bot does with each message: keep it as evidence, wrap its links, answer in the thread.

A Teams bot cannot edit a user's message, so it answers in the thread with one card listing each
link's host, a verdict badge and the wrapped link. Who the links are wrapped for decides who a
click is recorded against: in a personal chat the one user; in group chats and channels of up to
60 members each viewer gets their own card (Universal Actions user-specific views); above that
the links are shared and a click is recorded with its IP and an unknown user.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from dataclasses import dataclass
from typing import Any

from bot import cards, notify
from bot.actions import ActionRegistry
from bot.activity import (
    Account,
    CardAction,
    Conversation,
    ConversationType,
    IncomingMessage,
    Installation,
    MessageAction,
)
from bot.commands import Commands, parse_command
from bot.contracts import InvokeResult, TaskReply, TeamsConnector
from bot.errors import ActionRefused
from bot.links import links_of
from bot.people import People
from bot.reporting import Reporting
from shared.clicks import Workload
from shared.evidence import TeamsMessageEvidence, snippet_of
from shared.outbox import Outbox
from shared.policy import SafeLinksPolicy
from shared.quarantine import Cause, Mode
from shared.quarantine.service import Quarantine
from shared.services import Services
from shared.signing import LinkContext
from shared.store.conversations import SECURITY_CHANNEL, ConversationStore, StoredConversation, StoredUser
from shared.store.messages import EvidenceStore
from shared.verdicts.model import Verdict

log = logging.getLogger("safelinks.bot")
USER_SPECIFIC_VIEW_LIMIT = 60  # Teams shows per-user card versions to at most 60 users
VERDICT_TIMEOUT = 2.0
_TAGS = re.compile(r"<at\b[^>]*>.*?</at\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)


def visible_text(message: IncomingMessage) -> str:
    """The message text as people read it: mentions and markup dropped."""
    text = message.text
    if "<" in text:
        text = html.unescape(_TAGS.sub(" ", text))
    return " ".join(text.split())


def reply_key(conversation: Conversation, message_id: str) -> str:
    return f"reply:{conversation.base_id}:{message_id}"


@dataclass(frozen=True, slots=True)
class _Viewer:
    aad_object_id: str | None
    upn: str | None


class MessageHandling:
    """The ``BotLogic`` of teams-safelinks."""

    def __init__(self, services: Services, outbox: Outbox, connector: TeamsConnector,
                 actions: ActionRegistry) -> None:
        self.services = services
        self.outbox = outbox
        self.evidence = EvidenceStore(services.db)
        self.conversations = ConversationStore(services.db)
        self.people = People(connector, self.conversations, services.clock)
        self.commands = Commands(services, self.conversations, self.evidence, outbox, self.reply)
        self._known: set[str] = set()
        settings = services.settings
        self.quarantine = Quarantine(services.db, outbox, mode=Mode(settings.teams_quarantine), clock=services.clock,
                                     public_url=settings.public_url)
        self.reporting = Reporting(services, visible_text)
        self._groups: set[tuple[str, str]] = set()
        actions.register_verb(cards.VIEWER_VERB, self._viewer_card)
        self._actions = actions

    # Incoming activities.

    async def on_message(self, message: IncomingMessage) -> None:
        if message.from_bot:
            return
        await self._remember(message.conversation, message.reference)
        command = parse_command(message, visible_text(message))
        if command is not None:
            await self.commands.run(command, message)
            return
        handled = await self._handle_links(message, edited=False)
        if not handled and (message.conversation.is_personal or message.mentions_bot) and message.value is None:
            await self.reply(message, text="I found no link in that message. Send **help** to see what I can do.")

    async def on_message_edit(self, message: IncomingMessage) -> None:
        if not message.from_bot:
            await self._handle_links(message, edited=True)

    async def on_message_undelete(self, message: IncomingMessage) -> None:
        if not message.from_bot:
            await self.evidence.undelete(message.conversation.base_id, message.id)
            await self._handle_links(message, edited=True)

    async def on_message_delete(self, message: IncomingMessage) -> None:
        conv = message.conversation
        async with self.services.db.transaction() as tx:
            found = await self.evidence.mark_deleted(conv.base_id, message.id, self.services.clock(), tx=tx)
            if found:
                await notify.enqueue(self.outbox, target=conv.base_id, card=cards.deleted_card(),
                                     card_key=reply_key(conv, message.id), only_if_posted=True, tx=tx)
        self.outbox.wake()

    async def on_installation(self, installation: Installation) -> None:
        conv = installation.conversation
        now = self.services.clock()
        if not installation.added:
            await self.conversations.forget(conv.base_id, now)
            self._known.discard(conv.base_id)
            if await self.conversations.setting(SECURITY_CHANNEL) == conv.base_id:
                log.warning("the bot was removed from the security channel %s; alerts wait for a new one", conv.id)
                await self.conversations.set_setting(SECURITY_CHANNEL, "", now, "uninstall")
            return
        await self._remember(conv, installation.reference, force=True)
        if await self.conversations.mark_greeted(conv.base_id):
            await notify.enqueue(self.outbox, target=conv.base_id, card=cards.greeting_card(conv.type.value))
            self.outbox.wake()

    async def on_card_action(self, action: CardAction) -> InvokeResult:
        return await self._actions.dispatch(action)

    async def on_message_action(self, action: MessageAction) -> TaskReply:
        return await self.reporting.run(action, self._remember_group)

    async def _remember_group(self, team_id: str | None, aad_group_id: str | None) -> None:
        """Graph names a team by its AAD group id; keep it for hiding the team's messages later."""
        if not team_id or not aad_group_id or (team_id, aad_group_id) in self._groups:
            return
        await self.quarantine.store.remember_group(team_id, aad_group_id, self.services.clock().timestamp())
        self._groups.add((team_id, aad_group_id))

    # Replies.

    async def reply(self, message: IncomingMessage, *, card: dict[str, Any] | None = None,
                    text: str | None = None) -> None:
        conv = message.conversation
        await notify.enqueue(self.outbox, target=conv.base_id, thread=conv.id, reply_to=message.id,
                             card=card, text=text)
        self.outbox.wake()

    async def _remember(self, conv: Conversation, reference: dict[str, Any], *, force: bool = False) -> None:
        if conv.base_id in self._known and not force:
            return
        stored = StoredConversation(
            conversation_id=conv.base_id, conversation_type=conv.type.value, reference=reference,
            tenant_id=conv.tenant_id, team_id=conv.team_id, team_name=conv.team_name,
            channel_id=conv.channel_id, channel_name=conv.channel_name,
        )
        await self.conversations.remember(stored, self.services.clock())
        self._known.add(conv.base_id)

    # Links.

    def _policy(self, upn: str | None) -> SafeLinksPolicy:
        return self.services.policies.resolve(upn).policy

    @staticmethod
    def _reply_mode(policy: SafeLinksPolicy, conv: Conversation) -> str:
        if "reply_mode" in policy.model_fields_set:
            return policy.reply_mode
        return "always" if conv.is_personal else "risky-only"

    async def verdicts(self, urls: list[str]) -> list[Verdict]:
        await self.services.current()  # a verdict set a moment ago elsewhere shows on this card

        async def one(url: str) -> Verdict:
            try:
                return (await asyncio.wait_for(self.services.verdicts.check(url), VERDICT_TIMEOUT)).verdict
            except Exception as exc:  # a verdict failure must never stop a reply
                log.info("no verdict for %s: %s: %s", url, type(exc).__name__, exc)
                return Verdict.UNKNOWN

        return list(await asyncio.gather(*(one(u) for u in urls)))

    def wrap(self, url: str, ev: TeamsMessageEvidence, viewer: _Viewer | None) -> str:
        context = LinkContext(
            workload=Workload.TEAMS, tenant=ev.tenant_id, team=ev.team_id, channel=ev.channel_id,
            conversation=ev.conversation_id, message=ev.message_id,
            sender=ev.sender_upn or ev.sender_aad_object_id,
            recipient=viewer.upn if viewer else None, recipient_id=viewer.aad_object_id if viewer else None,
        )
        return self.services.signer.wrap(url, context, now=self.services.clock())

    def _evidence(self, message: IncomingMessage, urls: list[str], sender: StoredUser | None,
                  existing: TeamsMessageEvidence | None, edited: bool) -> TeamsMessageEvidence:
        conv = message.conversation
        now = self.services.clock()
        ours = self.services.settings.microsoft_app_tenant_id or conv.tenant_id
        sender_tenant = sender.tenant_id if sender else None
        channel = conv.type is ConversationType.CHANNEL
        snippet = snippet_of(visible_text(message), self.services.settings.evidence_snippet_chars)
        if existing is not None:
            return existing.edited(urls=tuple(urls), snippet=snippet, at=message.timestamp or now)
        return TeamsMessageEvidence(
            conversation_id=conv.base_id, message_id=message.id,
            parent_message_id=(conv.thread_root or message.id) if channel else None,
            thread_id=conv.base_id, thread_type="Topic" if channel else "Chat", thread_sub_type=conv.type.value,
            received_at=message.timestamp or now, urls=tuple(urls), tenant_id=conv.tenant_id,
            team_id=conv.team_id, team_name=conv.team_name, channel_id=conv.channel_id,
            channel_name=conv.channel_name, sender_aad_object_id=message.sender.aad_object_id,
            sender_id=message.sender.id, sender_name=message.sender.name,
            sender_upn=sender.upn if sender else None, sender_tenant_id=sender_tenant,
            is_external=bool(sender_tenant and ours and sender_tenant != ours), snippet=snippet,
            modified_at=now if edited else None,
        )

    async def _handle_links(self, message: IncomingMessage, *, edited: bool) -> bool:
        conv = message.conversation
        urls = await links_of(message, is_ours=self.services.signer.is_wrapped)
        existing = await self.evidence.get(conv.base_id, message.id) if edited else None
        if not urls and existing is None:
            return False
        sender = await self.people.lookup(message.sender, message.reference, conv.team_id or conv.base_id)
        ev = self._evidence(message, urls, sender, existing, edited)
        policy = self._policy(ev.sender_upn)
        shown = [u for u in urls if not policy.rewrite_exemptions.matches(u)]
        protect = await self._protects_a_reader(message, ev) if shown else False
        mode = self._reply_mode(policy, conv) if protect and shown else "silent"
        card: dict[str, Any] | None = None
        only_if_posted = True
        if not urls:
            card = cards.links_removed_card()
        elif protect and shown:
            verdicts = await self.verdicts(shown)
            if mode == "always" or (mode == "risky-only" and any(v.risky or v is Verdict.PENDING for v in verdicts)):
                only_if_posted = False
            card = await self._reply_card(message, ev, shown, verdicts)
        await self._remember_group(conv.team_id, conv.team_aad_group_id)
        hide = await self.quarantine.judge(urls, self.services.verdicts.check)
        async with self.services.db.transaction() as tx:
            await self.evidence.save(ev, tx=tx)
            if hide:
                await self.quarantine.hide(tx, ev, hide, cause=Cause.ARRIVAL)
            if card is not None and (edited or not only_if_posted):
                await notify.enqueue(self.outbox, target=conv.base_id, thread=conv.id, reply_to=message.id,
                                     card=card, card_key=reply_key(conv, message.id),
                                     only_if_posted=only_if_posted, tx=tx)
        self.outbox.wake()
        return True

    async def _protects_a_reader(self, message: IncomingMessage, ev: TeamsMessageEvidence) -> bool:
        """Whether Safe Links for Teams is on for anyone who reads the message.

        Teams protection follows the readers' policies (``EnableSafeLinksForTeams``), as in Defender,
        where the policy of the user who clicks decides; ``EnableForInternalSenders`` is an e-mail
        setting and plays no part, so links from colleagues are protected as those from guests. The
        readers are the sender and the conversation's members; where the members are unknown (a large
        team, a failed lookup) some reader has no policy of their own and gets Built-in protection.
        """
        conv = message.conversation
        readers: list[str | None] = [ev.sender_upn]
        if not conv.is_personal:
            roster = await self.people.roster(message.reference, conv.team_id or conv.base_id,
                                              USER_SPECIFIC_VIEW_LIMIT)
            readers += [m.upn or m.email for m in roster] if roster else [None]
        return any(self._policy(upn).enable_safe_links_for_teams for upn in readers)

    async def _reply_card(self, message: IncomingMessage, ev: TeamsMessageEvidence, urls: list[str],
                          verdicts: list[Verdict]) -> dict[str, Any]:
        conv = message.conversation
        if conv.is_personal:
            viewer = _Viewer(message.sender.aad_object_id, ev.sender_upn)
            links = [cards.CardLink(u, self.wrap(u, ev, viewer), v) for u, v in zip(urls, verdicts, strict=True)]
            return cards.reply_card(links)
        links = [cards.CardLink(u, self.wrap(u, ev, None), v) for u, v in zip(urls, verdicts, strict=True)]
        roster = await self.people.roster(message.reference, conv.team_id or conv.base_id, USER_SPECIFIC_VIEW_LIMIT)
        refresh = None
        if roster:
            refresh = cards.viewer_refresh(ev.conversation_id, ev.message_id, [m.id for m in roster if m.id])
        return cards.reply_card(links, refresh=refresh)

    async def _viewer_card(self, action: CardAction) -> dict[str, Any] | None:
        """A viewer's own version of a reply card: the same links, wrapped for them."""
        conversation_id = str(action.data.get("conversation") or "")
        message_id = str(action.data.get("message") or "")
        if conversation_id.split(";", 1)[0] != action.conversation_id.split(";", 1)[0]:
            # The ids are what the client sent: only the conversation the invoke comes from may be read.
            raise ActionRefused("this card belongs to another conversation")
        ev = await self.evidence.get(conversation_id, message_id)
        if ev is None or ev.deleted:
            return cards.deleted_card()
        stored = await self.conversations.get(conversation_id)
        reference = stored.reference if stored else {}
        user = await self.people.lookup(Account(action.user_id, action.user_name, action.user_aad_id),
                                        reference, (stored.team_id if stored else None) or conversation_id)
        viewer = _Viewer(action.user_aad_id, user.upn if user else None)
        policy = self._policy(ev.sender_upn)
        shown = [u for u in ev.urls if not policy.rewrite_exemptions.matches(u)]
        verdicts = await self.verdicts(shown)
        links = [cards.CardLink(u, self.wrap(u, ev, viewer), v) for u, v in zip(shown, verdicts, strict=True)]
        roster = await self.people.roster(reference, (stored.team_id if stored else None) or conversation_id,
                                          USER_SPECIFIC_VIEW_LIMIT) if reference else None
        refresh = cards.viewer_refresh(conversation_id, message_id, [m.id for m in roster if m.id]) if roster else None
        return cards.reply_card(links, refresh=refresh)
