"""Quarantine: hide a Teams message whose link is malicious from its readers, and release it again.

The Graph call never runs in the request that decides it: the decision writes the record and an
outbox item of kind ``graph`` in one transaction, so a restart loses nothing and the outbox's
leased claims keep two replicas from calling Graph twice. The item carries the record's
``generation``; a call overtaken by a later request (a release behind a hide) is dropped unsent.
Graph's answer is the truth that is recorded: a refusal (a message from another organisation,
a missing permission) leaves the record ``failed`` with the reason, and the warning reply stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from shared.evidence import TeamsMessageEvidence
from shared.graph import GraphClient, GraphRefused, GraphUnavailable, MessageRef, policy_violation
from shared.outbox import Outbox, PermanentFailure, RetryLater
from shared.quarantine.lookback import covered_messages
from shared.quarantine.model import (
    Cause,
    JudgedLink,
    Mode,
    QuarantineError,
    QuarantineNotFound,
    QuarantineOutcome,
    QuarantineRecord,
    State,
)
from shared.store import audit
from shared.store.alerts import AlertStore
from shared.store.database import Database, Executor
from shared.store.outbox import OutboxItem
from shared.store.quarantine import QuarantineStore
from shared.store.verdict_changes import VerdictChangeTable
from shared.verdicts.model import VerdictResult

log = logging.getLogger(__name__)
KIND = "graph"
CURSOR = "quarantine"
LOOKBACK_SECONDS = 48 * 3600.0
SAFE_LINKS = "Safe Links"
ALERTS_CURSOR = "quarantine_alerts"
Announcer = Callable[[QuarantineRecord, "list[int] | None"], Awaitable[None]]
Check = Callable[[str], Awaitable[VerdictResult]]
_FOREIGN = (
    "Graph refused to change the message (403): it is from another organisation, or the app lacks "
    "ChannelMessage.UpdatePolicyViolation.All / Chat.UpdatePolicyViolation.All; the warning reply stays"
)


def target_of(ev: TeamsMessageEvidence, aad_group_id: str | None) -> tuple[MessageRef | None, str | None]:
    """Where Graph finds the message, or why it cannot be addressed."""
    if ev.thread_sub_type == "channel":
        if not aad_group_id:
            return None, "the team's AAD group id is unknown (Teams sends channelData.team.aadGroupId)"
        if not ev.channel_id:
            return None, "the channel id is unknown"
        return MessageRef(ev.message_id, team_id=aad_group_id, channel_id=ev.channel_id,
                          root_id=ev.parent_message_id), None
    if ev.thread_sub_type == "groupChat" or with_people(ev):
        return MessageRef(ev.message_id, chat_id=ev.conversation_id), None
    return None, "a personal chat with the bot: only its sender reads it"


def with_people(ev: TeamsMessageEvidence) -> bool:
    """Whether other people read the message: any chat or channel but a personal chat with the bot.

    The bot's own personal chats have Bot Framework ids (``a:…``); a one-on-one chat between two people,
    reported with the message action, has its Teams chat id (``19:…``), which Graph knows.
    """
    return ev.thread_sub_type in ("channel", "groupChat") or ev.conversation_id.startswith("19:")


def reason_of(links: list[JudgedLink]) -> str:
    first = links[0]
    why = f" ({first.reason})" if first.reason else ""
    more = f" and {len(links) - 1} more" if len(links) > 1 else ""
    return f"{first.url} is {first.verdict} per {first.source or 'Safe Links'}{why}{more}"


class Quarantine:
    def __init__(self, db: Database, outbox: Outbox, *, mode: Mode, clock: Callable[[], datetime],
                 public_url: str, graph: GraphClient | None = None, announce: Announcer | None = None,
                 lookback_seconds: float = LOOKBACK_SECONDS) -> None:
        self.db = db
        self.outbox = outbox
        self.mode = mode
        self.clock = clock
        self.public_url = public_url.rstrip("/")
        self.graph = graph
        self.announce = announce
        self.lookback = lookback_seconds
        self.store = QuarantineStore(db)
        self._wake = asyncio.Event()

    @property
    def enabled(self) -> bool:
        return self.mode is not Mode.OFF

    def page_url(self, record: QuarantineRecord) -> str:
        return f"{self.public_url}/v1/quarantine/{record.page_token}"

    # Deciding.

    async def judge(self, urls: list[str] | tuple[str, ...], check: Check, *, timeout: float = 2.0
                    ) -> list[JudgedLink]:
        """The links whose verdict hides the message in this mode (none when quarantine is off)."""
        if not self.enabled or not urls:
            return []

        async def one(url: str) -> JudgedLink | None:
            try:
                found = await asyncio.wait_for(check(url), timeout)
            except Exception as exc:  # a verdict failure hides nothing; a later change still can
                log.info("quarantine: no verdict for %s: %s", url[:200], type(exc).__name__)
                return None
            if found.verdict.value not in self.mode.verdicts:
                return None
            return JudgedLink(url, found.verdict.value, found.source, "; ".join(found.reasons)[:300])

        judged = await asyncio.gather(*(one(u) for u in dict.fromkeys(urls)))
        return [j for j in judged if j is not None]

    async def hide(self, tx: Executor, ev: TeamsMessageEvidence, links: list[JudgedLink], *, cause: Cause,
                   by: str = SAFE_LINKS, reason: str | None = None) -> int | None:
        """Ask Graph (through the outbox, in ``tx``) to hide the message; returns the record id.

        A message already hidden or on its way is left alone; a released or failed one is hidden again on
        a new verdict change or an analyst's request, not when it is merely edited.
        Personal chats with the bot are never hidden (only their sender reads them).
        """
        record_id, _ = await self._hide(tx, ev, links, cause=cause, by=by, reason=reason)
        return record_id

    async def _hide(self, tx: Executor, ev: TeamsMessageEvidence, links: list[JudgedLink], *, cause: Cause,
                    by: str, reason: str | None) -> tuple[int | None, bool]:
        """``hide``'s record id, and whether the request changed the record (False: it was left alone)."""
        if not with_people(ev):
            return None, False
        group = await self.store.group_of(ev.team_id, tx) if ev.team_id else None
        ref, why_not = target_of(ev, group)
        reason = reason or reason_of(links)
        now = self.clock().timestamp()
        existing = await self.store.of_message(ev.conversation_id, ev.message_id, tx)
        if existing is None:
            record_id = await QuarantineStore.insert(
                tx, conversation_id=ev.conversation_id, message_id=ev.message_id,
                target=ref.to_json() if ref else {}, sender=ev.sender_upn or ev.sender_name,
                sender_aad_object_id=ev.sender_aad_object_id, links=links, reason=reason, cause=cause.value,
                state=State.HIDING if ref else State.FAILED, state_detail=why_not, requested_by=by, now=now)
            if record_id is None:
                return None, False
            generation = 1
        else:
            record_id = existing.id
            if existing.state in (State.HIDING, State.HIDDEN):
                return record_id, False
            if cause is Cause.ARRIVAL and existing.state in (State.RELEASED, State.RELEASING, State.FAILED):
                # An edit or a repeated delivery: a person's release (or Graph's refusal) stands.
                return record_id, False
            if ref is None:
                return record_id, False
            found = await QuarantineStore.request(tx, record_id, action="hide", state=State.HIDING, by=by, now=now,
                                                  expect=(State.RELEASED, State.FAILED, State.RELEASING),
                                                  reason=reason, cause=cause.value, target=ref.to_json())
            if found is None:
                return record_id, False
            generation = found
        record = await self.store.get(record_id, tx)
        if ref is not None and record is not None:
            body = policy_violation("BlockAccess", tip=f"Blocked by Safe Links: {reason}",
                                    explanation_url=self.page_url(record),
                                    conditions=[f"{link.url} ({link.verdict})" for link in links] or [reason])
            await self._enqueue(tx, record, generation, "hide", ref, body)
        return record_id, True

    async def hide_now(self, ev: TeamsMessageEvidence, links: list[JudgedLink], *, cause: Cause,
                       actor: audit.Who, reason: str | None = None) -> QuarantineOutcome:
        """A person's ``hide``, in a transaction of its own with its audit row; raises when the message
        cannot be hidden. A message already hidden, or being hidden, is left alone: no audit row."""
        if not with_people(ev):
            raise QuarantineError("a message in a personal chat with the bot is read only by its sender")
        by = actor.name or actor.id
        async with self.db.transaction() as tx:
            record_id, changed = await self._hide(tx, ev, links, cause=cause, by=by, reason=reason)
            if changed:
                await audit.record(tx, actor, "quarantine.hide", f"quarantine {record_id}",
                                   f"{ev.conversation_id} {ev.message_id}: {reason or ''}".strip(),
                                   at=self.clock().timestamp())
        self.outbox.wake()
        # Read by message, not by id: a request that lost a race to insert the record has no id of its own.
        record = await self.store.of_message(ev.conversation_id, ev.message_id)
        if record is None:
            raise QuarantineError("the message could not be quarantined")
        if not changed and record.state not in (State.HIDING, State.HIDDEN):
            raise QuarantineError(
                f"the message cannot be hidden: {record.state_detail or f'it is {record.state.value}; look again'}")
        return QuarantineOutcome(record, changed)

    async def release(self, record_id: int, *, actor: audit.Who) -> QuarantineOutcome:
        """Ask Graph to show the message again (``dlpAction: None``); the request and its audit row are one
        transaction. The CLI, the API, the card and the console all release through here. A message
        already released, or being released, is left alone: no audit row, no Graph call."""
        by = actor.name or actor.id
        record = await self.store.get(record_id)
        if record is None:
            raise QuarantineNotFound(f"no quarantined message {record_id}")
        if record.state in (State.RELEASED, State.RELEASING):
            return QuarantineOutcome(record, changed=False)
        if not record.target:
            raise QuarantineError(f"message {record_id} was never hidden: {record.state_detail or 'no target'}")
        if record.state is State.FAILED and record.hidden_at is None and record.last_action == "hide":
            raise QuarantineError(f"message {record_id} was never hidden: {record.state_detail}")
        async with self.db.transaction() as tx:
            generation = await QuarantineStore.request(
                tx, record_id, action="release", state=State.RELEASING, by=by, now=self.clock().timestamp(),
                expect=(State.HIDING, State.HIDDEN, State.FAILED))
            if generation is None:
                moved = await self.store.get(record_id, tx)
                if moved is not None and moved.state in (State.RELEASED, State.RELEASING):
                    return QuarantineOutcome(moved, changed=False)  # a release pressed at the same time won
                raise QuarantineError(f"message {record_id} changed meanwhile; look again")
            await audit.record(tx, actor, "quarantine.release", f"quarantine {record_id}",
                               f"{record.conversation_id} {record.message_id}", at=self.clock().timestamp())
            fresh = await self.store.get(record_id, tx)
            assert fresh is not None
            await self._enqueue(tx, fresh, generation, "release", MessageRef.from_json(record.target),
                                policy_violation("None"))
        self.outbox.wake()
        found = await self.store.get(record_id)
        assert found is not None
        return QuarantineOutcome(found, changed=True)

    async def _enqueue(self, tx: Executor, record: QuarantineRecord, generation: int, action: str,
                       ref: MessageRef, body: dict[str, Any]) -> None:
        await self.outbox.enqueue(
            KIND, {"id": record.id, "generation": generation, "action": action, "target": ref.to_json(),
                   "body": body},
            key=f"graph:{record.conversation_id}:{record.message_id}",  # hide and release go in order
            dedupe_key=f"quarantine:{record.id}:{generation}", tx=tx)

    # Delivering (the outbox handler for kind "graph").

    async def deliver(self, item: OutboxItem) -> dict[str, Any]:
        payload = item.payload
        record_id, generation, action = int(payload["id"]), int(payload["generation"]), str(payload["action"])
        if await self.store.generation(record_id) != generation:
            return {"skipped": "a later request replaced this one"}
        if self.graph is None:
            raise RetryLater("Microsoft Graph is not configured in this process")
        try:
            answer = await self.graph.set_policy_violation(MessageRef.from_json(payload["target"]), payload["body"])
        except GraphUnavailable as exc:
            raise RetryLater(str(exc), exc.retry_after) from None
        except GraphRefused as exc:
            detail = _FOREIGN if exc.status == 403 else f"{action}: {exc}"
            await self._settle(record_id, generation, State.FAILED, detail)
            raise PermanentFailure(detail) from None
        wanted = "BlockAccess" if action == "hide" else "None"
        got = (answer.get("policyViolation") or {}).get("dlpAction") if answer else None
        if answer and "policyViolation" in answer and (got or "None") != wanted:
            detail = f"{action}: Graph answered dlpAction {got or 'None'}, not {wanted}"
            await self._settle(record_id, generation, State.FAILED, detail)
            return {"action": action, "dlpAction": got, "recorded": "failed"}
        await self._settle(record_id, generation, State.HIDDEN if action == "hide" else State.RELEASED, None)
        return {"action": action, "dlpAction": got or wanted}

    async def _settle(self, record_id: int, generation: int, state: State, detail: str | None) -> None:
        if not await self.store.settle(record_id, generation, state=state, detail=detail,
                                       now=self.clock().timestamp()):
            return
        record = await self.store.get(record_id)
        if record is not None and self.announce is not None:
            try:
                await self.announce(record, None)
            except Exception:  # the record is the truth; a card that lags is fixed by the next change
                log.exception("quarantine %d: announcing %s failed", record_id, state.value)

    # Verdict changes (the look-back).

    def wake(self, _: object = None) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Forever: hide the messages each new verdict change covers (one replica at a time)."""
        while True:
            self._wake.clear()
            try:
                await self.process_changes()
                await self.process_alerts()
            except Exception:  # the store may be away; the cursor keeps our place
                log.exception("quarantine round failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._wake.wait()

    async def process_alerts(self, batch: int = 500) -> int:
        """Alerts raised on a message after it was quarantined (a click on the reply card's link, a report)
        learn its state too: the same comment and card as the alerts that were there when it settled."""
        alerts = AlertStore(self.db)
        told = 0
        while True:
            position = await alerts.cursor(ALERTS_CURSOR)
            found = await alerts.messages_after(position, batch)
            if not found:
                return told
            for alert_id, conversation_id, message_id in found:
                if not conversation_id or not message_id or self.announce is None:
                    continue
                record = await self.store.of_message(conversation_id, message_id)
                if record is None or record.state in (State.HIDING, State.RELEASING):
                    continue  # nothing happened yet; settling it tells every alert of the message
                alert = await alerts.get(alert_id)
                if alert is not None and (alert.details.get("quarantine") or {}).get("state") != record.state.value:
                    await self.announce(record, [alert.id])
                    told += 1
            async with self.db.transaction() as tx:
                await AlertStore.advance_cursor(tx, ALERTS_CURSOR, found[-1][0])

    async def process_changes(self, batch: int = 2000) -> int:
        """Every verdict change after the cursor: messages delivered in the look-back before it are hidden."""
        alerts = AlertStore(self.db)
        changelog = VerdictChangeTable(self.db)
        hidden = 0
        wanted = self.mode.verdicts
        while True:
            position = await alerts.cursor(CURSOR)
            read = await changelog.after(position, batch)
            if not read:
                return hidden
            last = read[-1].change_id
            changes = [c for c in read if c.new_verdict in wanted and c.old_verdict not in wanted]
            found = [m async for m in covered_messages(self.db, changes, self.lookback)] if changes else []
            async with self.db.transaction() as tx:
                for ev, hits in found:
                    links = [JudgedLink(url, c.new_verdict, c.source, c.reason[:300]) for url, c in hits]
                    if await self.hide(tx, ev, links, cause=Cause.VERDICT_CHANGE) is not None:
                        hidden += 1
                await AlertStore.advance_cursor(tx, CURSOR, last)
            if found:
                self.outbox.wake()
