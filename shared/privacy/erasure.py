"""Erasure: the statements, table by table, run in one transaction by ``erase_subject``.

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
from shared.alerts.model import Alert
from shared.privacy.subject import ERASED_NAME, Scrubber, Subject, find_subject, pseudonym, queries
from shared.signing import LinkContext, SigningError
from shared.store.alerts import alert_from_row
from shared.store.database import Database, Executor, Row
from shared.store.incidents import incident_from_row


def _is(value: Any, subject: Subject) -> bool:
    return isinstance(value, str) and value.lower() == subject.upn


async def erase_rows(tx: Executor, subject: Subject, scrub: Scrubber,
                     queries: dict[str, tuple[str, list[Any]]]) -> dict[str, int]:
    async def rows(table: str) -> list[Row]:
        sql, params = queries[table]
        return await tx.fetchall(sql, params)

    alias, alias_id = scrub.alias, scrub.alias_id

    def upn(value: Any) -> Any:
        return alias if _is(value, subject) else value

    def oid(value: Any) -> Any:
        return alias_id if value in subject.object_ids or value in subject.user_ids else value

    changed: dict[str, int] = {}

    found = await rows("clicks")
    await tx.executemany(
        "UPDATE clicks SET account_upn = ?, account_object_id = ?, recipient = ?, sender = ?, ip_address = ?, "
        "user_agent = ? WHERE id = ?",
        [(upn(r["account_upn"]), oid(r["account_object_id"]), upn(r["recipient"]), upn(r["sender"]),
          None if _theirs(r, subject) else r["ip_address"], None if _theirs(r, subject) else r["user_agent"], r["id"])
         for r in found])
    changed["clicks"] = len(found)

    found = await rows("teams_messages")
    await tx.executemany(
        "UPDATE teams_messages SET sender_upn = ?, sender_aad_object_id = ?, sender_id = ?, sender_name = ?, "
        "snippet = '', subject = NULL WHERE conversation_id = ? AND message_id = ?",
        [(alias, alias_id, alias_id, ERASED_NAME, r["conversation_id"], r["message_id"]) for r in found])
    changed["teams_messages"] = len(found)

    found = await rows("teams_users")
    await tx.executemany("DELETE FROM teams_users WHERE user_id = ?", [(r["user_id"],) for r in found])
    changed["teams_users"] = len(found)

    found = await rows("alerts")
    alerts_found = found
    await tx.executemany(
        "UPDATE alerts SET account_upn = ?, account_object_id = ?, sender = ?, assigned_to = ?, title = ?, "
        "description = ?, evidence = ?, details = ?, comments = ? WHERE id = ?",
        [(upn(r["account_upn"]), oid(r["account_object_id"]), upn(r["sender"]), scrub.text(upn(r["assigned_to"])),
          scrub.text(r["title"]), scrub.text(r["description"]),
          _json(_evidence(_load(r["evidence"]), subject, scrub, clicked=_theirs(r, subject)), scrub),
          _json(_details(_load(r["details"]), subject, scrub, clicked=_theirs(r, subject)), scrub),
          scrub.document(r["comments"]), r["id"]) for r in found])
    changed["alerts"] = len(found)

    found = await rows("incidents")
    await tx.executemany(
        "UPDATE incidents SET assigned_to = ?, title = ?, comments = ?, resolving_comment = ? WHERE id = ?",
        [(scrub.text(r["assigned_to"]), scrub.text(r["title"]), scrub.document(r["comments"]),
          scrub.text(r["resolving_comment"]), r["id"]) for r in found])
    changed["incidents"] = len(found)

    changed["incident_entities"] = await tx.execute(
        "UPDATE incident_entities SET value = ? WHERE LOWER(value) = ?", (alias, subject.upn))

    found = await rows("alert_actions")
    await tx.executemany(
        "UPDATE alert_actions SET actor = ?, actor_name = ?, detail = ? WHERE id = ?",
        [(alias if _is(r["actor"], subject) else oid(r["actor"]), ERASED_NAME, scrub.text(r["detail"]), r["id"])
         for r in found])
    changed["alert_actions"] = len(found)

    # Reply cards in the chats they wrote in, and in their own chat with the bot, hold links wrapped
    # for them (their UPN is inside each link's encoded context).
    chats = {conversation for conversation, _ in subject.messages}
    chats |= {str(r["conversation_id"]) for r in await rows("teams_conversations")}
    updates = []
    for r in await _outbox_rows(tx, queries["outbox"], alerts_found, sorted(chats)):
        payload = _erase_links(await _rendered_again(tx, r["kind"], _load(r["payload"])), subject)
        now = (_unless_same(r["payload"], payload, scrub), _unless_same(r["result"], _load(r["result"]), scrub),
               scrub.text(r["last_error"]))
        if now != (r["payload"], r["result"], r["last_error"]):
            updates.append((*now, r["id"]))
    await tx.executemany("UPDATE outbox SET payload = ?, result = ?, last_error = ? WHERE id = ?", updates)
    changed["outbox"] = len(updates)

    found = await rows("teams_conversations")
    await tx.executemany("UPDATE teams_conversations SET reference = ? WHERE conversation_id = ?",
                         [(scrub.document(r["reference"]), r["conversation_id"]) for r in found])
    changed["teams_conversations"] = len(found)

    for table, column, key in (("tabl_entries", "created_by", "id"), ("verdicts", "set_by", "expression"),
                               ("bot_settings", "updated_by", "name")):
        found = await rows(table)
        await tx.executemany(f"UPDATE {table} SET {column} = ? WHERE {key} = ?",
                             [(alias if _is(r[column], subject) else oid(r[column]), r[key]) for r in found])
        changed[table] = len(found)

    found = await rows("quarantined_messages")
    await tx.executemany(
        "UPDATE quarantined_messages SET sender = ?, sender_aad_object_id = ?, requested_by = ?, released_by = ? "
        "WHERE id = ?",
        [(_person(r["sender"], subject, alias), oid(r["sender_aad_object_id"]),
          _person(r["requested_by"], subject, alias), _person(r["released_by"], subject, alias), r["id"])
         for r in found])
    changed["quarantined_messages"] = len(found)

    found = await rows("message_reports")
    await tx.executemany(
        "UPDATE message_reports SET reporter_id = ?, reporter_aad_object_id = ?, reporter_name = ?, note = '' "
        "WHERE id = ?",
        [(oid(r["reporter_id"]), oid(r["reporter_aad_object_id"]), ERASED_NAME, r["id"]) for r in found])
    changed["message_reports"] = len(found)

    found = await rows("audit_log")
    names = {n.lower() for n in subject.names} | {subject.upn}

    def actor_name(r: Row) -> Any:
        theirs = (r["actor_name"] or "").lower() in names or oid(r["actor"]) != r["actor"] or _is(r["actor"], subject)
        return ERASED_NAME if theirs else scrub.text(r["actor_name"])

    await tx.executemany(
        "UPDATE audit_log SET actor = ?, actor_name = ?, target = ?, detail = ? WHERE id = ?",
        [(alias if _is(r["actor"], subject) else oid(r["actor"]), actor_name(r), scrub.text(r["target"]),
          scrub.text(r["detail"]), r["id"]) for r in found])
    changed["audit_log"] = len(found)

    # A session is only good for signing in: an erased person's sessions end.
    found = await rows("console_sessions")
    await tx.executemany("DELETE FROM console_sessions WHERE token_hash = ?", [(r["token_hash"],) for r in found])
    changed["console_sessions"] = len(found)

    # Where the app is installed for them: a fact about the tenant, not about them; the next coverage round
    # records it again while they are still a member.
    found = await rows("coverage_targets")
    await tx.executemany("DELETE FROM coverage_targets WHERE kind = ? AND target_id = ?",
                         [(r["kind"], r["target_id"]) for r in found])
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


async def _outbox_rows(tx: Executor, query: tuple[str, list[Any]], alerts: list[Row], chats: list[str]
                       ) -> list[Row]:
    """Outbox rows that mention the person, those that copied one of the alerts found, and the Teams
    messages to ``chats``."""
    sql, params = query
    if chats:
        where = sql.split(" WHERE ", 1)[1].rsplit(" ORDER BY", 1)[0]
        marks = ", ".join("?" for _ in chats)
        sql = f"SELECT * FROM outbox WHERE {where} OR (kind = 'teams' AND key IN ({marks})) ORDER BY id"
        params = [*params, *chats]
    extra: list[str] = []
    for r in alerts:
        # The outbox's own JSON (compact separators): an e-mail's alert id, a webhook body's, a card's key.
        n = int(r["id"])
        extra += [f'%"alert_id":{n},%', f'%"alert_id":{n}}}%',
                  f'%"document":{{"@odata.type":"{_ALERT_TYPE}","id":"{n}"%']
        if r["incident_id"] is not None:
            extra.append(f'%"card_key":"incident:{int(r["incident_id"])}"%')
    if extra:
        where = sql.split(" WHERE ", 1)[1].rsplit(" ORDER BY", 1)[0]
        sql = f"SELECT * FROM outbox WHERE {where} OR " + " OR ".join("payload LIKE ?" for _ in extra) + " ORDER BY id"
        params = [*params, *extra]
    return await tx.fetchall(sql, params)


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


async def _alert(tx: Executor, alert_id: int) -> Alert | None:
    row = await tx.fetchone("SELECT * FROM alerts WHERE id = ?", (alert_id,))
    return alert_from_row(row) if row else None
_ALERT_PATH = re.compile(r"/api/v1/alerts/\d+$")


async def _rendered_again(tx: Executor, kind: str, payload: Any) -> Any:
    """A notification that copied an alert, rendered again from the (now erased) alert it copied."""
    if not isinstance(payload, dict):
        return payload
    if kind == email_kind.KIND and isinstance(payload.get("alert_id"), int):
        alert = await _alert(tx, payload["alert_id"])
        if alert is not None:
            return {**email_kind.render(alert, tuple(payload.get("to") or ()), link=payload.get("link")),
                    **{k: v for k, v in payload.items() if k not in ("subject", "text", "html", "alert_id", "link")}}
    elif kind == webhooks.KIND and isinstance(payload.get("document"), dict):
        document = payload["document"]
        if document.get("@odata.type") == _ALERT_TYPE and str(document.get("id", "")).isdigit():
            alert = await _alert(tx, int(document["id"]))
            if alert is not None:
                public_url = _ALERT_PATH.sub("", str(document.get("alertWebUrl") or ""))
                return {**payload, "document": alert_json(alert, public_url=public_url,
                                                          tenant_id=document.get("tenantId"))}
    elif str(payload.get("card_key") or "").startswith("incident:") and isinstance(payload.get("card"), dict):
        incident_id = int(str(payload["card_key"]).split(":", 1)[1])
        incident = await tx.fetchone("SELECT * FROM incidents WHERE id = ?", (incident_id,))
        shown = await tx.fetchone("SELECT * FROM alerts WHERE incident_id = ? ORDER BY created_at DESC, id DESC "
                                  "LIMIT 1", (incident_id,))
        if incident is not None and shown is not None:
            return {**payload, "card": alert_card(alert_from_row(shown), incident_from_row(incident))}
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
        changed = await erase_rows(tx, subject, scrub, queries(subject))
    if db.dialect == "sqlite":
        # The log still holds the pages as they were: copy it into the file and empty it.
        await db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return Erasure(subject, alias, changed)
