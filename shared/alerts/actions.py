"""What people do to alerts and incidents: resolve, classify, assign, block or allow the URL.

The same operations serve the card buttons, the REST API and the command line. Each is recorded
(who, what, through which way) and re-posts the incident's card, so the card in the security
channel always shows the current state. Card buttons are only honoured for members of the
security channel (the action comes from it) or the administrators (``SAFELINKS_ADMINS``).

A change that would leave an alert as it is (resolving a resolved alert, a button pressed twice,
an invoke Teams repeats) is applied once: the second time records nothing and tells nobody.
"Allow" allows exactly the alert's URL or nothing: an entry that would cover more (a ``*`` read as
a wildcard, an address too long for the list, a port or user name the list cannot hold) is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.alerts.cards import alert_card
from shared.alerts.errors import InvalidChange, NotAuthorized, NotFound
from shared.alerts.incidents import Correlator
from shared.alerts.model import Alert, AlertStatus, Classification, IncidentStatus, parse_enum
from shared.alerts.ports import ChannelResolver
from shared.alerts.writer import AlertWriter
from shared.store import audit
from shared.store.alerts import AlertStore
from shared.store.database import Executor
from shared.store.incidents import IncidentStore
from shared.urllists.tenant_list import MAX_ENTRY_LENGTH, TablAction, TablError
from shared.urllists.tenant_list_syntax import parse_entry
from shared.urls import URLError, covers, parse

# An incident's status maps onto its alerts' (Graph spells "active" for incidents, "new" for alerts).
_ALERT_STATUS_OF = {
    IncidentStatus.ACTIVE: AlertStatus.NEW,
    IncidentStatus.IN_PROGRESS: AlertStatus.IN_PROGRESS,
    IncidentStatus.RESOLVED: AlertStatus.RESOLVED,
}


@dataclass(frozen=True, slots=True)
class Actor:
    id: str
    name: str = ""
    via: str = "api"


@dataclass(frozen=True, slots=True)
class Changes:
    status: str | None = None
    classification: str | None = None
    determination: str | None = None
    assigned_to: str | None = None
    comment: str | None = None

    def empty(self) -> bool:
        return all(
            v is None
            for v in (
                self.status,
                self.classification,
                self.determination,
                self.assigned_to,
                self.comment,
            )
        )


def tabl_entry(url: str) -> str:
    """The block entry for a URL: host and path up to any ``*``; the host alone when that is too long.

    A block may cover more than the URL (its subdomains and the paths below), never less.
    """
    try:
        target = parse(url)
    except URLError:
        return ""
    host, raw_path = target.network_host, target.path
    path = raw_path.split("*", 1)[0] if raw_path not in ("", "/") else ""
    if "*" in raw_path:
        path = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
    entry = host + path
    return entry if len(entry) <= MAX_ENTRY_LENGTH else host


def exact_allow_entry(url: str) -> str:
    """The allow entry that covers exactly ``url`` (host, path and query); InvalidChange when none can."""
    try:
        target = parse(url)
    except URLError as exc:
        raise InvalidChange(f"cannot allow {url!r}: {exc}") from None
    if target.userinfo:
        raise InvalidChange("cannot allow exactly this URL: the tenant list holds no user names")
    if target.port is not None:  # None is the scheme's own port
        raise InvalidChange(f"cannot allow exactly this URL: the tenant list holds no ports ({target.port})")
    host = target.host
    rest = (target.path if target.path not in ("", "/") else "") + (f"?{target.query}" if target.query else "")
    if rest.startswith("?"):
        rest = "/" + rest
    # A '*' in the address is a character, not the list's wildcard: written percent-encoded, the
    # entry matches it literally.
    entry = host + rest.replace("*", "%2A")
    if len(entry) > MAX_ENTRY_LENGTH:
        raise InvalidChange(
            f"cannot allow exactly this URL: its entry would be {len(entry)} characters and the tenant list "
            f"takes {MAX_ENTRY_LENGTH}; add a narrower allow by hand if it is needed"
        )
    try:
        pattern = parse_entry(entry, TablAction.ALLOW)
    except TablError as exc:
        raise InvalidChange(f"cannot allow exactly this URL: {exc}") from None
    if not pattern.matches(url) or pattern.path_mode.name not in ("EXACT", "EMPTY"):
        raise InvalidChange("cannot allow exactly this URL: the tenant list cannot express it")
    return entry


def same_conversation(a: str | None, b: str | None) -> bool:
    """Teams adds ``;messageid=…`` to a channel thread's conversation id; compare the channel part."""
    if not a or not b:
        return False
    return a.split(";", 1)[0] == b.split(";", 1)[0]


class AlertActions:
    def __init__(
        self,
        writer: AlertWriter,
        *,
        tenant_list: Any,
        clock: Callable[[], datetime],
        channel: ChannelResolver,
        admins: list[str],
    ) -> None:
        self.writer = writer
        self.db = writer.db
        self.alerts = AlertStore(self.db)
        self.incidents = IncidentStore(self.db)
        self.tenant_list = tenant_list
        self.clock = clock
        self.channel = channel
        self.admins = {a.lower() for a in admins}

    async def authorize(self, user_aad_id: str, conversation_id: str | None) -> None:
        if user_aad_id.lower() in self.admins:
            return
        if same_conversation(conversation_id, await self.channel()):
            return
        raise NotAuthorized("only members of the security channel or administrators may act on alerts")

    async def _alert(self, alert_id: int) -> Alert:
        alert = await self.alerts.get(alert_id)
        if alert is None:
            raise NotFound(f"no alert {alert_id}")
        return alert

    def _alert_fields(self, changes: Changes, now: float, alert: Alert | None = None, by: str = "") -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if changes.status is not None:
            status = parse_enum(AlertStatus, changes.status, "alert status")
            fields["status"] = status.value
            fields["resolved_at"] = now if status is AlertStatus.RESOLVED else None
        if changes.classification is not None:
            fields["classification"] = parse_enum(Classification, changes.classification, "classification").value
        if changes.determination is not None:
            fields["determination"] = changes.determination
        if changes.assigned_to is not None:
            fields["assigned_to"] = changes.assigned_to or None
        if changes.comment and alert is not None:
            comments = [
                {"comment": c.comment, "by": c.created_by, "at": c.created_at.timestamp()} for c in alert.comments
            ]
            fields["comments"] = json.dumps([*comments, {"comment": changes.comment, "by": by, "at": now}])
        if fields:
            fields["updated_at"] = now
        return fields

    @staticmethod
    def _still_to_do(alert: Alert, changes: Changes) -> Changes:
        """``changes`` without what the alert already is (values are checked first)."""
        status, classification = changes.status, changes.classification
        if status is not None and parse_enum(AlertStatus, status, "alert status") is alert.status:
            status = None
        if classification is not None and (
                parse_enum(Classification, classification, "classification") is alert.classification):
            classification = None
        determination = None if changes.determination == alert.determination else changes.determination
        assigned = changes.assigned_to
        if assigned is not None and (assigned or None) == alert.assigned_to:
            assigned = None
        return Changes(status, classification, determination, assigned, changes.comment)

    async def update_alert(self, alert_id: int, changes: Changes, actor: Actor, *, note: str | None = None) -> Alert:
        alert = await self._alert(alert_id)
        if changes.empty():
            raise InvalidChange(
                "nothing to change: give status, classification, determination, assignedTo or a comment"
            )
        now = self.clock().timestamp()
        channel = await self.channel()
        async with self.db.transaction() as tx:
            await self.alerts.lock(tx, alert_id)  # two presses at once: the second waits, then sees the first
            alert = await self.alerts.get(alert_id, tx) or alert
            changes = self._still_to_do(alert, changes)
            if changes.empty():
                return alert  # a repeat: already so, nothing recorded, nobody told again
            fields = self._alert_fields(changes, now, alert, by=actor.name or actor.id)
            await AlertStore.set_fields(tx, alert_id, fields)
            await self._record(tx, alert_id, alert.incident_id, changes, actor, now)
            await self.writer.announce_update(tx, alert_id, now)
            if alert.incident_id is not None:
                await Correlator.refresh(tx, alert.incident_id, now=now)
                await self.writer.update_card(tx, alert.incident_id, channel, note or self._note(changes, actor))
        return await self._alert(alert_id)

    async def update_incident(self, incident_id: int, changes: Changes, actor: Actor) -> None:
        incident = await self.incidents.get(incident_id)
        if incident is None:
            raise NotFound(f"no incident {incident_id}")
        if changes.empty():
            raise InvalidChange(
                "nothing to change: give status, classification, determination, assignedTo or a comment"
            )
        now = self.clock().timestamp()
        inc_fields: dict[str, Any] = {"updated_at": now}
        alert_changes = changes
        if changes.status is not None:
            status = parse_enum(IncidentStatus, changes.status, "incident status")
            inc_fields["status"] = status.value
            inc_fields["resolved_at"] = now if status is IncidentStatus.RESOLVED else None
            if status is IncidentStatus.RESOLVED and changes.comment:
                inc_fields["resolving_comment"] = changes.comment
            alert_changes = Changes(
                _ALERT_STATUS_OF[status].value,
                changes.classification,
                changes.determination,
                changes.assigned_to,
            )
        alert_fields = self._alert_fields(
            Changes(
                alert_changes.status,
                alert_changes.classification,
                alert_changes.determination,
                alert_changes.assigned_to,
            ),
            now,
        )
        for name in ("classification", "determination", "assigned_to"):
            if name in alert_fields:
                inc_fields[name] = alert_fields[name]
        channel = await self.channel()
        async with self.db.transaction() as tx:
            if alert_fields:
                await AlertStore.set_fields_of_incident(tx, incident_id, alert_fields)
            await IncidentStore.set_fields(tx, incident_id, inc_fields)
            await self._record(tx, None, incident_id, changes, actor, now)
            if alert_fields:
                for alert_id in await AlertStore.ids_of_incident(tx, incident_id):
                    await self.writer.announce_update(tx, alert_id, now)
            await self.writer.update_card(tx, incident_id, channel, self._note(changes, actor))

    async def _record(
        self,
        tx: Executor,
        alert_id: int | None,
        incident_id: int | None,
        changes: Changes,
        actor: Actor,
        now: float,
    ) -> None:
        for verb, value in (
            ("status", changes.status),
            ("classification", changes.classification),
            ("determination", changes.determination),
            ("assignedTo", changes.assigned_to),
            ("comment", changes.comment),
        ):
            if value is not None:
                await AlertStore.record_action(
                    tx,
                    alert_id=alert_id,
                    incident_id=incident_id,
                    verb=verb,
                    detail=value,
                    actor=actor.id,
                    actor_name=actor.name,
                    via=actor.via,
                    at=now,
                )
                target = f"alert {alert_id}" if alert_id is not None else f"incident {incident_id}"
                await audit.record(tx, actor, f"{'alert' if alert_id is not None else 'incident'}.{verb}",
                                   target, value, at=now)

    @staticmethod
    def _note(changes: Changes, actor: Actor) -> str:
        who = actor.name or actor.id
        parts = []
        if changes.status is not None:
            parts.append(f"marked {changes.status}")
        if changes.classification is not None:
            parts.append(f"classified {changes.classification}")
        if changes.assigned_to is not None:
            parts.append(f"assigned to {changes.assigned_to or 'nobody'}")
        if changes.comment:
            parts.append(f"noted “{changes.comment}”")
        return f"{who} {', '.join(parts) or 'updated it'}."

    async def set_url_list(self, alert_id: int, action: TablAction, actor: Actor) -> Alert:
        """Block or allow the alert's URL in the Tenant Allow/Block List; allowing marks a false positive."""
        alert = await self._alert(alert_id)
        entry = exact_allow_entry(alert.url) if action is TablAction.ALLOW else tabl_entry(alert.url)
        added = True
        try:
            await self.tenant_list.add(
                entry,
                action,
                notes=f"alert {alert.id} ({alert.title})",
                created_by=actor.id,
                now=self.clock(),
                actor=actor,
            )
        except TablError as exc:
            if "already" not in str(exc):
                raise InvalidChange(f"cannot {action.value} {entry}: {exc}") from None
            added = False
        who = actor.name or actor.id
        if action is TablAction.BLOCK:
            if not added:
                return alert  # already blocked: a repeated press changes nothing
            changes = Changes(comment=f"URL blocked (tenant block list entry {entry})")
            note = f"{who} blocked {entry} in the tenant block list."
        else:
            changes = Changes(
                status="resolved",
                classification="falsePositive",
                comment=f"URL allowed (tenant allow list entry {entry})" if added else None,
            )
            note = f"{who} allowed {entry} (false positive); alert resolved."
        return await self.update_alert(alert_id, changes, actor, note=note)

    async def resolve_clean(self, rule_ids: list[str], expression: str, reason: str) -> list[int]:
        """A URL's verdict went back to clean: resolve the open alerts of ``rule_ids`` on URLs it covers."""
        found = [a for a in await self.alerts.open_of_rules(rule_ids) if _covered(expression, a.url)]
        actor = Actor("safelinks", "Safe Links", via="verdict")
        note = f"Resolved automatically: the URL's verdict is clean again ({reason})."
        for alert in found:
            await self.update_alert(alert.id, Changes(status="resolved", comment=note), actor, note=note)
        return [a.id for a in found]

    async def card_for(self, alert_id: int, note: str | None) -> dict[str, Any]:
        alert = await self._alert(alert_id)
        incident = await self.incidents.get(alert.incident_id) if alert.incident_id is not None else None
        return alert_card(alert, incident, note=note)


def _covered(expression: str, url: str) -> bool:
    try:
        return covers(expression, url)
    except ValueError:
        return False
