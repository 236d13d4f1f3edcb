"""Erasure: the new value of every row that mentions the person, table by table, stored in one transaction
by ``erase_subject`` (the statements are ``shared.store.erasure``'s).

Alerts are erased by structure (their evidence and click details field by field); the notifications
that copied an alert are then rendered again from the erased alert; every row found is finally
searched for the person's remaining names, ids and words.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from shared.alerts import email as email_kind
from shared.alerts import webhooks
from shared.alerts.cards import alert_card
from shared.alerts.graph import alert_json, user_account
from shared.privacy.subject import ERASED_NAME, Scrubber, find_subject, pseudonym
from shared.signing import LinkContext, SigningError
from shared.store import erasure as erase
from shared.store.alerts import AlertStore
from shared.store.database import Database, Executor, Row
from shared.store.incidents import IncidentStore
from shared.store.subjects import Authored, Authorship, Subject, SubjectRows


def _is(value: Any, subject: Subject) -> bool:
    return isinstance(value, str) and value.lower() == subject.upn


async def erase_rows(tx: Executor, rows: SubjectRows, scrub: Scrubber, alerts: AlertStore,
                     incidents: IncidentStore) -> dict[str, int]:
    """Pseudonymise the person in every table, in the caller's transaction; the rows changed, by table."""
    subject = rows.subject
    alias, alias_id = scrub.alias, scrub.alias_id

    def upn(value: Any) -> Any:
        return alias if _is(value, subject) else value

    def oid(value: Any) -> Any:
        return alias_id if value in subject.object_ids or value in subject.user_ids else value

    changed: dict[str, int] = {}

    found = await rows.of(tx, "clicks")
    await erase.clicks(tx, [
        erase.ClickChange(upn(r["account_upn"]), oid(r["account_object_id"]), upn(r["recipient"]), upn(r["sender"]),
                          None if _theirs(r, subject) else r["ip_address"],
                          None if _theirs(r, subject) else r["user_agent"], r["id"])
        for r in found])
    changed["clicks"] = len(found)

    found = await rows.of(tx, "teams_messages")
    await erase.messages(tx, [(r["conversation_id"], r["message_id"]) for r in found], alias, alias_id, ERASED_NAME)
    changed["teams_messages"] = len(found)

    found = await rows.of(tx, "teams_users")
    await erase.users(tx, [r["user_id"] for r in found])
    changed["teams_users"] = len(found)

    found = await rows.of(tx, "alerts")
    alerts_found = found
    await erase.alerts(tx, [
        erase.AlertChange(upn(r["account_upn"]), oid(r["account_object_id"]), upn(r["sender"]),
                          scrub.text(upn(r["assigned_to"])), scrub.text(r["title"]), scrub.text(r["description"]),
                          _json(_evidence(_load(r["evidence"]), subject, scrub, clicked=_theirs(r, subject)), scrub),
                          _json(_details(_load(r["details"]), subject, scrub, clicked=_theirs(r, subject)), scrub),
                          scrub.document(r["comments"]), r["id"])
        for r in found])
    changed["alerts"] = len(found)

    found = await rows.of(tx, "incidents")
    await erase.incidents(tx, [
        erase.IncidentChange(scrub.text(r["assigned_to"]), scrub.text(r["title"]), scrub.document(r["comments"]),
                             scrub.text(r["resolving_comment"]), r["id"])
        for r in found])
    changed["incidents"] = len(found)

    changed["incident_entities"] = await erase.entities(tx, subject.upn, alias)

    found = await rows.of(tx, "alert_actions")
    await erase.actions(tx, [
        erase.ActionChange(alias if _is(r["actor"], subject) else oid(r["actor"]), ERASED_NAME, scrub.text(r["detail"]),
                           r["id"])
        for r in found])
    changed["alert_actions"] = len(found)

    # Reply cards in the chats they wrote in, and in their own chat with the bot, hold links wrapped
    # for them (their UPN is inside each link's encoded context).
    chats = {conversation for conversation, _ in subject.messages}
    chats |= {str(r["conversation_id"]) for r in await rows.of(tx, "teams_conversations")}
    updates = []
    for r in await rows.outbox(tx, chats=sorted(chats), payload_like=_copies(alerts_found)):
        payload = _erase_links(await _rendered_again(tx, alerts, incidents, r["kind"], _load(r["payload"])), subject)
        now = (_unless_same(r["payload"], payload, scrub), _unless_same(r["result"], _load(r["result"]), scrub),
               scrub.text(r["last_error"]))
        if now != (r["payload"], r["result"], r["last_error"]):
            updates.append(erase.OutboxChange(*now, r["id"]))
    await erase.outbox(tx, updates)
    changed["outbox"] = len(updates)

    found = await rows.of(tx, "teams_conversations")
    await erase.conversations(tx, [erase.ConversationChange(scrub.document(r["reference"]), r["conversation_id"])
                                   for r in found])
    changed["teams_conversations"] = len(found)

    tables: tuple[Authored, ...] = ("tabl_entries", "verdicts", "bot_settings")
    for table in tables:
        authored = await rows.authored(tx, table)
        await erase.authors(tx, table, [Authorship(alias if _is(a.author, subject) else oid(a.author), a.key)
                                        for a in authored])
        changed[table] = len(authored)

    found = await rows.of(tx, "quarantined_messages")
    await erase.quarantine(tx, [
        erase.QuarantineChange(_person(r["sender"], subject, alias), oid(r["sender_aad_object_id"]),
                               _person(r["requested_by"], subject, alias), _person(r["released_by"], subject, alias),
                               r["id"])
        for r in found])
    changed["quarantined_messages"] = len(found)

    found = await rows.of(tx, "message_reports")
    await erase.reports(tx, [
        erase.ReportChange(oid(r["reporter_id"]), oid(r["reporter_aad_object_id"]), ERASED_NAME, r["id"])
        for r in found])
    changed["message_reports"] = len(found)

    found = await rows.of(tx, "audit_log")
    names = {n.lower() for n in subject.names} | {subject.upn}

    def actor_name(r: Row) -> Any:
        theirs = ((r["actor_name"] or "").lower() in names or oid(r["actor"]) != r["actor"] or _is(r["actor"], subject)
                  or _is(r["actor_upn"], subject))
        return ERASED_NAME if theirs else scrub.text(r["actor_name"])

    await erase.audit(tx, [
        erase.AuditChange(alias if _is(r["actor"], subject) else oid(r["actor"]), actor_name(r), upn(r["actor_upn"]),
                          scrub.text(r["target"]), scrub.text(r["detail"]), r["id"])
        for r in found])
    changed["audit_log"] = len(found)

    # A session is only good for signing in: an erased person's sessions end.
    found = await rows.of(tx, "console_sessions")
    await erase.sessions(tx, [r["token_hash"] for r in found])
    changed["console_sessions"] = len(found)

    # Where the app is installed for them: a fact about the tenant, not about them; the next coverage round
    # records it again while they are still a member.
    found = await rows.of(tx, "coverage_targets")
    await erase.coverage(tx, [(r["kind"], r["target_id"]) for r in found])
    changed["coverage_targets"] = len(found)
    return changed


def _person(value: Any, subject: Subject, alias: str) -> Any:
    """A UPN or display name of the person as the alias (or the erased name); anyone else's as it was."""

    if _is(value, subject):
        return alias
    if isinstance(value, str) and value.casefold() in {n.casefold() for n in subject.names}:
        return ERASED_NAME
    return value


def _theirs(row: Row, subject: Subject) -> bool:
    """A click the person made (not one on a link they sent)."""
    return _is(row["account_upn"], subject) or row["account_object_id"] in subject.object_ids


def _load(text: str | None) -> Any:
    if not text:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _json(value: Any, scrub: Scrubber) -> str | None:
    if value is None or value == "":
        return None if value is None else ""
    if isinstance(value, str):
        return scrub.text(value)
    return json.dumps(scrub.node(value), separators=(",", ":"))


def _unless_same(stored: str | None, value: Any, scrub: Scrubber) -> str | None:
    """``value`` scrubbed, as stored JSON; the stored text itself when that changes nothing."""
    after = _json(value, scrub)
    if stored is None or after is None or _load(after) == _load(stored):
        return stored
    return after


def _is_type(item: Any, kind: str) -> bool:
    return isinstance(item, dict) and str(item.get("@odata.type", "")).endswith(kind)


def _evidence(items: Any, subject: Subject, scrub: Scrubber, *, clicked: bool) -> Any:
    """Alert evidence with the person taken out field by field (see the module text)."""
    if not isinstance(items, list):
        return items
    alias, alias_id = scrub.alias, scrub.alias_id

    out = []
    for item in items:
        item = dict(item) if isinstance(item, dict) else item
        if _is_type(item, "userEvidence"):
            account = item.get("userAccount") or {}
            if _is(account.get("userPrincipalName"), subject) or account.get("azureAdUserId") in subject.object_ids:
                item["userAccount"] = user_account(alias, alias_id, ERASED_NAME)
        elif _is_type(item, "teamsMessageEvidence"):
            sender = item.get("senderFromAddress") or {}
            if (_is(sender.get("emailAddress"), subject) or item.get("safelinksSenderAadObjectId")
                    in subject.object_ids or subject.sent(item.get("safelinksConversationId")
                                                          or item.get("threadId"), item.get("messageId"))):
                item.update(senderFromAddress={"displayName": ERASED_NAME, "emailAddress": alias},
                            safelinksSenderAadObjectId=alias_id, safelinksSnippet="", subject=None)
        elif _is_type(item, "ipEvidence") and clicked:
            item["ipAddress"] = None
        elif _is_type(item, "analyzedMessageEvidence"):
            if _is(item.get("recipientEmailAddress"), subject):
                item["recipientEmailAddress"] = alias
            if _is((item.get("p2Sender") or {}).get("emailAddress"), subject):
                item["p2Sender"] = {"emailAddress": alias}
        out.append(item)
    return out


def _details(details: Any, subject: Subject, scrub: Scrubber, *, clicked: bool) -> Any:
    """Alert details: the click record of the person's click loses its address and user agent."""
    if not isinstance(details, dict) or not isinstance(details.get("click"), dict):
        return details
    click = dict(details["click"])
    for column in ("AccountUpn", "Recipient", "Sender"):
        if _is(click.get(column), subject):
            click[column] = scrub.alias
    if click.get("AccountObjectId") in subject.object_ids:
        click["AccountObjectId"] = scrub.alias_id
    if clicked:
        click.update(IPAddress=None, UserAgent=None)
    return {**details, "click": click}


def _copies(alerts: list[Row]) -> list[str]:
    """LIKE patterns of the outbox payloads that copied one of ``alerts``, in the outbox's own JSON (compact
    separators): an e-mail's alert id, a webhook body's, an incident card's key."""
    patterns: list[str] = []
    for r in alerts:
        n = int(r["id"])
        patterns += [f'%"alert_id":{n},%', f'%"alert_id":{n}}}%',
                     f'%"document":{{"@odata.type":"{_ALERT_TYPE}","id":"{n}"%']
        if r["incident_id"] is not None:
            patterns.append(f'%"card_key":"incident:{int(r["incident_id"])}"%')
    return patterns


_ALERT_TYPE = "#microsoft.graph.security.alert"
_LINK = re.compile(r"https?://[^\s\"'<>()\[\]]+")
_CONTEXT = re.compile(r"[?&]data=([A-Za-z0-9_-]+)")
ERASED_LINK = "https://erased.invalid/"


def _erase_links(value: Any, subject: Subject) -> Any:
    """Wrapped links whose encoded context names the person replaced by ``ERASED_LINK``."""
    if isinstance(value, str):
        return _LINK.sub(lambda m: ERASED_LINK if _names_them(m.group(0), subject) else m.group(0), value)
    if isinstance(value, list):
        return [_erase_links(v, subject) for v in value]
    if isinstance(value, dict):
        return {k: _erase_links(v, subject) for k, v in value.items()}
    return value


def _names_them(link: str, subject: Subject) -> bool:
    found = _CONTEXT.search(link)
    if found is None:
        return False
    try:
        context = LinkContext.decode(found.group(1))
    except SigningError:
        return False
    ids = subject.object_ids | subject.user_ids
    return any(_is(v, subject) or v in ids for v in (context.sender, context.recipient, context.recipient_id))


_ALERT_PATH = re.compile(r"/api/v1/alerts/\d+$")


async def _rendered_again(tx: Executor, alerts: AlertStore, incidents: IncidentStore, kind: str, payload: Any
                          ) -> Any:
    """A notification that copied an alert, rendered again from the (now erased) alert it copied."""
    if not isinstance(payload, dict):
        return payload
    if kind == email_kind.KIND and isinstance(payload.get("alert_id"), int):
        alert = await alerts.get(payload["alert_id"], tx)
        if alert is not None:
            return {**email_kind.render(alert, tuple(payload.get("to") or ()), link=payload.get("link")),
                    **{k: v for k, v in payload.items() if k not in ("subject", "text", "html", "alert_id", "link")}}
    elif kind == webhooks.KIND and isinstance(payload.get("document"), dict):
        document = payload["document"]
        if document.get("@odata.type") == _ALERT_TYPE and str(document.get("id", "")).isdigit():
            alert = await alerts.get(int(document["id"]), tx)
            if alert is not None:
                public_url = _ALERT_PATH.sub("", str(document.get("alertWebUrl") or ""))
                return {**payload, "document": alert_json(alert, public_url=public_url,
                                                          tenant_id=document.get("tenantId"))}
    elif str(payload.get("card_key") or "").startswith("incident:") and isinstance(payload.get("card"), dict):
        incident_id = int(str(payload["card_key"]).split(":", 1)[1])
        incident = await incidents.get(incident_id, tx)
        shown = await alerts.of_incident(incident_id, tx)  # the card shows the newest
        if incident is not None and shown:
            return {**payload, "card": alert_card(shown[-1], incident)}
    return payload


@dataclass(frozen=True)
class Erasure:
    """What an erasure changed, by table."""

    subject: Subject
    alias: str
    changed: dict[str, int]


async def erase_subject(db: Database, upn: str, key: bytes) -> Erasure:
    """Pseudonymise the person everywhere, in one transaction (see ``shared.privacy``)."""
    async with db.transaction() as tx:
        subject = await find_subject(tx, upn)
        alias = pseudonym(key, subject.upn)
        scrub = Scrubber(subject, alias, alias.split("@", 1)[0])
        changed = await erase_rows(tx, SubjectRows(subject), scrub, AlertStore(db), IncidentStore(db))
    # The log still holds the pages as they were.
    await erase.truncate_log(db)
    return Erasure(subject, alias, changed)
