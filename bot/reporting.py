"""The "Report to security" message action: answer the reporter at once, keep the message, raise the alert.

Teams waits 5 seconds for the answer, so the links are checked with a short timeout each (all at
once) and the report is stored before the answer; what is still pending then is caught later by
the verdict-change look-back like any other message. The message is kept as the same
``teamsMessageEvidence`` the bot keeps for messages it sees (its own copy is used when it has one).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.activity import Account, IncomingMessage, MessageAction
from bot.contracts import TaskReply
from bot.links import links_in
from shared.evidence import TeamsMessageEvidence, snippet_of
from shared.quarantine import JudgedLink
from shared.reports import ReportDesk, Reporter, ReportOutcome
from shared.services import Services
from shared.store.conversations import ConversationStore
from shared.store.messages import EvidenceStore

log = logging.getLogger("safelinks.bot")
REPORT_COMMAND = "reportMessage"
CHECK_TIMEOUT = 2.0
ChannelOf = Callable[[], Awaitable[str | None]]


class Reporting:
    """Answers message actions; ``desk`` and ``channel`` are set by the process that raises alerts."""

    def __init__(self, services: Services, visible: Callable[[IncomingMessage], str]) -> None:
        self.services = services
        self.evidence = EvidenceStore(services.db)
        self.conversations = ConversationStore(services.db)
        self.visible = visible
        self.desk: ReportDesk | None = None
        self.channel: ChannelOf | None = None

    async def run(self, action: MessageAction, remember_group: Callable[[str | None, str | None], Awaitable[None]]
                  ) -> TaskReply:
        if action.command_id != REPORT_COMMAND:
            return TaskReply(f"Unknown action {action.command_id[:64]!r}.")
        if self.desk is None:
            return TaskReply("Reports cannot be taken right now; please tell your security team directly.")
        try:
            outcome = await self._report(action, remember_group)
        except Exception:  # the store may be away: say so now rather than let Teams time out
            log.exception("report of message %s failed", action.message_id[:64])
            return TaskReply("The report could not be saved just now. Please try again in a minute.")
        if outcome.duplicate:
            return TaskReply("You already reported this message; your security team has it.")
        if outcome.verdict == "malicious":
            return TaskReply("Thank you: reported to your security team. A link in this message is known to be "
                             "malicious: do not open it.")
        return TaskReply("Thank you: the message was reported to your security team.")

    async def _report(self, action: MessageAction,
                      remember_group: Callable[[str | None, str | None], Awaitable[None]]) -> ReportOutcome:
        assert self.desk is not None
        conv = action.conversation
        await remember_group(conv.team_id, conv.team_aad_group_id)
        kept = await self.evidence.get(conv.base_id, action.message_id)
        ev = kept or self._evidence(action)
        links = await self._judge(ev.urls)
        stored = await self.conversations.user(action.user.id)
        reporter = Reporter(action.user.id, action.user.aad_object_id, action.user.name,
                            stored.upn if stored else None)
        note = str(action.data.get("note") or "")[:1000]
        channel = await self.channel() if self.channel else None
        return await self.desk.report(ev, reporter, note, links, now=self.services.clock(), channel=channel,
                                      keep_evidence=kept is None)

    def _evidence(self, action: MessageAction) -> TeamsMessageEvidence:
        conv = action.conversation
        message = IncomingMessage(id=action.message_id, conversation=conv,
                                  sender=_author(action), bot=action.user, text=action.message_text,
                                  text_format=action.message_format)
        urls = links_in(message, is_ours=self.services.signer.is_wrapped)
        channel = conv.channel_id is not None
        now = self.services.clock()
        snippet = snippet_of(self.visible(message), self.services.settings.evidence_snippet_chars)
        return TeamsMessageEvidence(
            conversation_id=conv.base_id, message_id=action.message_id,
            parent_message_id=(action.reply_to_id or conv.thread_root or action.message_id) if channel else None,
            thread_id=conv.base_id, thread_type="Topic" if channel else "Chat", thread_sub_type=conv.type.value,
            received_at=action.created or now, urls=tuple(urls), tenant_id=conv.tenant_id, team_id=conv.team_id,
            team_name=conv.team_name, channel_id=conv.channel_id, channel_name=conv.channel_name,
            sender_aad_object_id=action.sender_aad_object_id, sender_name=action.sender_name or None,
            snippet=snippet,  # the payload does not say the author's tenant: not marked external
        )

    async def _judge(self, urls: tuple[str, ...]) -> list[JudgedLink]:
        async def one(url: str) -> JudgedLink:
            try:
                found = await asyncio.wait_for(self.services.verdicts.check(url), CHECK_TIMEOUT)
            except Exception as exc:  # the reporter still gets an answer; the look-back catches up later
                log.info("report: no verdict for %s: %s", url[:200], type(exc).__name__)
                return JudgedLink(url, "pending" if isinstance(exc, TimeoutError) else "unknown")
            return JudgedLink(url, found.verdict.value, found.source, "; ".join(found.reasons)[:300])

        return list(await asyncio.gather(*(one(u) for u in urls)))


def _author(action: MessageAction) -> Account:
    return Account(id="", name=action.sender_name, aad_object_id=action.sender_aad_object_id)
