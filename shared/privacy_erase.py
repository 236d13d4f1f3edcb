"""The statements of an erasure, table by table (``shared.privacy.erase_subject`` runs them in one transaction)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.store.database import Executor, Row

if TYPE_CHECKING:
    from shared.privacy import Scrubber, Subject


def _is(value: Any, subject: Subject) -> bool:
    return isinstance(value, str) and value.lower() == subject.upn


async def erase_rows(tx: Executor, subject: Subject, scrub: Scrubber,
                     queries: dict[str, tuple[str, list[Any]]]) -> dict[str, int]:
    async def rows(table: str) -> list[Row]:
        sql, params = queries[table]
        return await tx.fetchall(sql, params)

    alias, alias_id = scrub.alias, scrub.alias_id
    from shared.privacy import ERASED_NAME

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
    await tx.executemany(
        "UPDATE alerts SET account_upn = ?, account_object_id = ?, sender = ?, assigned_to = ?, title = ?, "
        "description = ?, evidence = ?, details = ?, comments = ? WHERE id = ?",
        [(upn(r["account_upn"]), oid(r["account_object_id"]), upn(r["sender"]), scrub.text(r["assigned_to"]),
          scrub.text(r["title"]), scrub.text(r["description"]), scrub.document(r["evidence"]),
          scrub.document(r["details"]), scrub.document(r["comments"]), r["id"]) for r in found])
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

    found = await rows("outbox")
    await tx.executemany("UPDATE outbox SET payload = ?, result = ? WHERE id = ?",
                         [(scrub.document(r["payload"]), scrub.document(r["result"]), r["id"]) for r in found])
    changed["outbox"] = len(found)

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
    return changed


def _person(value: Any, subject: Subject, alias: str) -> Any:
    """A UPN or display name of the person as the alias (or the erased name); anyone else's as it was."""
    from shared.privacy import ERASED_NAME

    if _is(value, subject):
        return alias
    if isinstance(value, str) and value.casefold() in {n.casefold() for n in subject.names}:
        return ERASED_NAME
    return value


def _theirs(row: Row, subject: Subject) -> bool:
    """A click the person made (not one on a link they sent)."""
    return _is(row["account_upn"], subject) or row["account_object_id"] in subject.object_ids
