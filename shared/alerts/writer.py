"""Storing drafts: the alert, its events, its incident and its notifications in one transaction.

Nothing is announced that is not stored, and nothing stored goes unannounced: the outbox rows (the
card, e-mail, webhooks) are written in the same transaction as the alert. A draft whose event is
already stored is skipped, which is what makes replays, restarts and a second worker harmless.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.alerts import email as email_kind
from shared.alerts import webhooks
from shared.alerts.budget import Budget
from shared.alerts.cards import alert_card
from shared.alerts.drafts import Draft
from shared.alerts.graph import alert_json, build_evidence
from shared.alerts.incidents import Correlator
from shared.alerts.ports import CardPoster, EvidenceSource, NoEvidence
from shared.alerts.rules import RuleSet
from shared.outbox import Outbox
from shared.store.alerts import AlertStore
from shared.store.database import Database, Executor
from shared.store.errors import DuplicateKey
from shared.store.incidents import IncidentStore
from shared.urls import InvalidURL, URLError, canonicalize, parse, registrable_domain
from shared.verdicts.model import VerdictResult

log = logging.getLogger(__name__)


def card_key(incident_id: int) -> str:
    return f"incident:{incident_id}"


def group_key(draft: Draft) -> str:
    grouping = draft.rule.aggregation or draft.rule.suppression
    if grouping is None:
        return ""
    click = draft.click
    values = {
        "user": (click.account_upn or click.account_object_id or "").lower(),
        "url": click.url,
        "domain": _domain(click.url),
        "message": f"{click.conversation_id}/{click.message_id}",
        "sender": (click.sender or "").lower(),
        "workload": click.workload.value,
    }
    text = "\x1f".join(values.get(b, "") for b in grouping.by)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _domain(url: str) -> str:
    try:
        host = parse(url).network_host
    except URLError:
        return ""
    return registrable_domain(host)


def _canonical(url: str) -> str:
    try:
        return canonicalize(url)
    except InvalidURL:
        return url


@dataclass
class WriteResult:
    created: list[int] = field(default_factory=list)
    created_from: list[tuple[str, datetime]] = field(default_factory=list)  # (rule, click time)
    aggregated: int = 0
    suppressed: int = 0
    skipped: int = 0
    incidents: set[int] = field(default_factory=set)


@dataclass
class AlertWriter:
    db: Database
    outbox: Outbox
    correlator: Correlator
    post_card: CardPoster | None = None
    evidence: EvidenceSource = field(default_factory=NoEvidence)
    public_url: str = ""
    # The verdict engine's current opinion, to say why a click rule fired (clicks keep no reasons).
    explain: Callable[[str], Awaitable[VerdictResult]] | None = None
    # The rules, to find whom to tell when an alert changes after it was raised.
    rules: RuleSet | None = None
    # How many notifications each recipient gets per window before the rest wait for a summary.
    budget: Budget = field(default_factory=Budget)

    def __post_init__(self) -> None:
        self.alerts = AlertStore(self.db)
        self.incidents = IncidentStore(self.db)

    async def _values(self, draft: Draft, now: datetime) -> dict[str, Any]:
        click = draft.click
        message = None
        if click.workload.value == "Teams" and click.message_id:
            message = await self.evidence.teams_message(click.conversation_id, click.message_id)
        name = await self.evidence.display_name(click.account_object_id, click.account_upn)
        evidence = build_evidence(
            click,
            verdict=draft.verdict.get("verdict", ""),
            created=now,
            message=message,
            display_name=name,
        )
        rule = draft.rule
        verdict = dict(draft.verdict)
        if draft.change_id is None and self.explain is not None:
            try:
                found = await self.explain(click.url)
            except Exception as exc:  # a reason is a nicety; never lose an alert for it
                log.info("no verdict reason for %s: %s", click.url[:200], exc)
            else:
                if found.verdict.value == click.verdict and found.reasons:
                    verdict["reason"] = "; ".join(found.reasons)
                    verdict["expression"] = found.expression
        values = {
            "alert_key": draft.key,
            "rule_id": rule.id,
            "title": rule.title,
            "description": rule.description,
            "recommended_actions": rule.recommended_actions,
            "severity": rule.severity.value,
            "category": rule.category,
            "status": "new",
            "classification": "unknown",
            "determination": "unknown",
            "assigned_to": None,
            "incident_id": None,
            "group_key": group_key(draft),
            "created_at": now.timestamp(),
            "updated_at": now.timestamp(),
            "resolved_at": None,
            "first_activity": min(c.timestamp for c in draft.clicks).timestamp(),
            "last_activity": max(c.timestamp for c in draft.clicks).timestamp(),
            "event_count": len(draft.event_keys),
            "url": click.url,
            "canonical_url": _canonical(click.url),
            "domain": _domain(click.url),
            "account_upn": click.account_upn,
            "account_object_id": click.account_object_id,
            "workload": click.workload.value,
            "conversation_id": click.conversation_id,
            "message_id": click.message_id or click.network_message_id,
            "sender": click.sender,
            "report_id": click.report_id,
            "change_id": draft.change_id,
            "evidence": json.dumps(evidence),
            "details": json.dumps(
                {
                    "click": click.to_record(),
                    "verdict": verdict,
                    "report_ids": list(dict.fromkeys(c.report_id for c in draft.clicks)),
                    "notes": [],
                }
            ),
            "comments": "[]",
        }
        if draft.overrides:
            values.update(draft.overrides)
        return values

    async def write(
        self, drafts: Sequence[Draft], *, now: datetime, channel: str | None, tx_extra: Any = None
    ) -> WriteResult:
        """Store drafts (those not stored yet) in one transaction; ``tx_extra(tx)`` runs inside it too."""
        prepared = [(d, await self._values(d, now)) for d in drafts]
        result = WriteResult()
        try:
            async with self.db.transaction() as tx:
                for draft, values in prepared:
                    await self._one(tx, draft, values, now, result)
                for incident_id in sorted(result.incidents):
                    await Correlator.refresh(tx, incident_id, now=now.timestamp())
                    await self._card(tx, incident_id, channel, note=None)
                if tx_extra is not None:
                    await tx_extra(tx)
        except DuplicateKey:
            # Another worker stored one of these first; store the rest one by one.
            if len(prepared) == 1:
                return WriteResult(skipped=1)
            merged = WriteResult()
            for draft, _ in prepared:
                one = await self.write([draft], now=now, channel=channel)
                merged.created += one.created
                merged.created_from += one.created_from
                merged.aggregated += one.aggregated
                merged.suppressed += one.suppressed
                merged.skipped += one.skipped
                merged.incidents |= one.incidents
            if tx_extra is not None:
                async with self.db.transaction() as tx:
                    await tx_extra(tx)
            return merged
        if result.created or result.aggregated:
            self.outbox.wake()
        return result

    async def _one(
        self, tx: Executor, draft: Draft, values: dict[str, Any], now: datetime, result: WriteResult
    ) -> None:
        if await AlertStore.event_seen(tx, draft.event_keys[0]):
            result.skipped += 1
            return
        rule = draft.rule
        at = now.timestamp()
        grouping = rule.aggregation or rule.suppression
        if grouping is not None:
            # An open-ended window folds into the open alert whenever its last activity was.
            since = values["first_activity"] - grouping.seconds if grouping.seconds is not None else 0.0
            existing = await AlertStore.open_in_group(tx, rule.id, values["group_key"], since)
            if existing is not None:
                suppressed = rule.aggregation is None
                for key, click in zip(draft.event_keys, draft.clicks, strict=False):
                    await AlertStore.add_event(
                        tx, key, int(existing["id"]), click.report_id, suppressed=suppressed, at=at
                    )
                if suppressed:
                    result.suppressed += 1
                    return
                await AlertStore.fold_events(
                    tx, int(existing["id"]), len(draft.event_keys), values["last_activity"], at
                )
                result.aggregated += 1
                if existing["incident_id"] is not None:
                    result.incidents.add(int(existing["incident_id"]))
                return
        incident_id, opened = await self.correlator.attach(tx, values, now=at)
        stored = {k: v for k, v in values.items() if k != "canonical_url"}
        stored["incident_id"] = incident_id
        alert_id = await self.alerts.insert(tx, stored)
        await IncidentStore.count_alert(tx, incident_id, values["last_activity"])
        for key, click in zip(draft.event_keys, draft.clicks, strict=False):
            await AlertStore.add_event(tx, key, alert_id, click.report_id, suppressed=False, at=at)
        result.created.append(alert_id)
        result.created_from.append((rule.id, draft.click.timestamp))
        result.incidents.add(incident_id)
        await self._notify(tx, draft, alert_id, now, opened=opened)

    async def _notify(self, tx: Executor, draft: Draft, alert_id: int, now: datetime, *, opened: bool) -> None:
        """E-mail and webhooks for a new alert, within each recipient's budget; the first notification of a
        new incident always goes at once, whatever the budget or the rule's daily e-mail limit say."""
        alert = await self.alerts.get(alert_id, tx)
        assert alert is not None
        notes: list[str] = []
        target = draft.rule.notifications
        at = now.timestamp()
        budget = self.budget
        if target.email_to:
            day = now.strftime("%Y-%m-%d")
            recipient = "email:" + ",".join(sorted(a.lower() for a in target.email_to))
            within_limit = await AlertStore.take_quota(tx, draft.rule.id, "email", day, target.email_daily_limit)
            if (within_limit or opened) and await budget.take(tx, recipient, at, always=opened):
                link = f"{self.public_url}/api/v1/alerts/{alert_id}" if self.public_url else None
                await self.outbox.enqueue(
                    email_kind.KIND,
                    email_kind.render(alert, target.email_to, link=link),
                    dedupe_key=f"alert:{alert.key}:email",
                    tx=tx,
                )
                if not within_limit:
                    notes.append(f"e-mail sent past the rule's daily limit of {target.email_daily_limit}: "
                                 "the first notification of a new incident is never held")
            else:
                why = (f"the rule's daily limit of {target.email_daily_limit} was reached" if not within_limit
                       else f"more than {budget.burst} e-mails to these recipients within {budget.window:g} s")
                await budget.hold(tx, self.outbox, recipient, alert, at, why=why, email_to=target.email_to)
                notes.append(f"e-mail held for the recipients' summary: {why}")
        if target.webhooks:
            document = alert_json(alert, public_url=self.public_url)
            for n, hook in enumerate(target.webhooks):
                recipient = f"webhook:{hook.url}"
                if not await budget.take(tx, recipient, at, always=opened):
                    why = f"more than {budget.burst} notifications to this webhook within {budget.window:g} s"
                    await budget.hold(tx, self.outbox, recipient, alert, at, why=why,
                                      webhook=hook.url)
                    notes.append(f"webhook {n + 1} held for its summary: {why}")
                    continue
                await self.outbox.enqueue(
                    webhooks.KIND,
                    webhooks.payload(hook.url, "alert.created", document),
                    key=f"webhook:{hook.url}",
                    dedupe_key=f"alert:{alert.key}:webhook:{n}",
                    tx=tx,
                )
        if notes:
            details = {**alert.details, "notes": alert.details.get("notes", []) + notes}
            await AlertStore.set_fields(tx, alert_id, {"details": json.dumps(details)})

    async def announce_update(self, tx: Executor, alert_id: int, now: float) -> None:
        """Send the alert as it now stands to its rule's webhooks (``alert.updated``), so a SOAR that
        received ``alert.created`` also learns of resolution, classification and assignment."""
        if self.rules is None:
            return
        alert = await self.alerts.get(alert_id, tx)
        rule = self.rules.get(alert.rule_id) if alert is not None else None
        if alert is None or rule is None or not rule.notifications.webhooks:
            return
        document = alert_json(alert, public_url=self.public_url)
        for n, hook in enumerate(rule.notifications.webhooks):
            await self.outbox.enqueue(
                webhooks.KIND,
                webhooks.payload(hook.url, "alert.updated", document),
                key=f"webhook:{hook.url}",  # after the alert's own alert.created, in order
                dedupe_key=f"alert:{alert.key}:webhook:{n}:updated:{now!r}",
                tx=tx,
            )

    async def _card(self, tx: Executor, incident_id: int, channel: str | None, *, note: str | None) -> None:
        if self.post_card is None or not channel:
            return
        incident = await self.incidents.get(incident_id, tx)
        alerts = await self.alerts.of_incident(incident_id, tx)
        if incident is None or not alerts:
            return
        show = alerts[-1]
        await self.post_card(
            self.outbox,
            channel,
            alert_card(show, incident, note=note),
            card_key=card_key(incident_id),
            tx=tx,
        )

    async def update_card(self, tx: Executor, incident_id: int, channel: str | None, note: str | None) -> None:
        """Re-post an incident's card (same key: the bot edits it in place), e.g. after an action."""
        await self._card(tx, incident_id, channel, note=note)
