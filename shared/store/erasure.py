"""Erasing one person's rows (``shared.privacy`` decides the new values): for each table, the new values
of a row found by ``SubjectRows`` as one tuple, and the statement that stores them in the caller's
transaction. Rows that only describe the person are deleted instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from shared.store.database import Database, Executor
from shared.store.subjects import AUTHORS, Authored, Authorship

__all__ = [
    "ActionChange",
    "AlertChange",
    "AuditChange",
    "ClickChange",
    "ConversationChange",
    "IncidentChange",
    "OutboxChange",
    "QuarantineChange",
    "ReportChange",
    "actions",
    "alerts",
    "audit",
    "authors",
    "clicks",
    "conversations",
    "coverage",
    "entities",
    "incidents",
    "messages",
    "outbox",
    "quarantine",
    "reports",
    "sessions",
    "truncate_log",
    "users",
]


class ClickChange(NamedTuple):
    """A click's people, address and user agent after erasure."""

    account_upn: str | None
    account_object_id: str | None
    recipient: str | None
    sender: str | None
    ip_address: str | None
    user_agent: str | None
    id: int


class AlertChange(NamedTuple):
    """An alert's people, texts and JSON documents after erasure."""

    account_upn: str | None
    account_object_id: str | None
    sender: str | None
    assigned_to: str | None
    title: str | None
    description: str | None
    evidence: str | None
    details: str | None
    comments: str | None
    id: int


class IncidentChange(NamedTuple):
    """An incident's assignee, title and comments after erasure."""

    assigned_to: str | None
    title: str | None
    comments: str | None
    resolving_comment: str | None
    id: int


class ActionChange(NamedTuple):
    """An action taken on an alert, after erasure."""

    actor: str | None
    actor_name: str | None
    detail: str | None
    id: int


class OutboxChange(NamedTuple):
    """A notification's stored JSON and last error after erasure."""

    payload: str | None
    result: str | None
    last_error: str | None
    id: int


class ConversationChange(NamedTuple):
    """A conversation's stored reference after erasure."""

    reference: str | None
    conversation_id: str


class QuarantineChange(NamedTuple):
    """A quarantined message's sender and the people who hid or released it, after erasure."""

    sender: str | None
    sender_aad_object_id: str | None
    requested_by: str | None
    released_by: str | None
    id: int


class ReportChange(NamedTuple):
    """A message report's reporter after erasure."""

    reporter_id: str | None
    reporter_aad_object_id: str | None
    reporter_name: str
    id: int


class AuditChange(NamedTuple):
    """An audit log entry's actor, target and detail after erasure."""

    actor: str | None
    actor_name: str | None
    actor_upn: str | None
    target: str | None
    detail: str | None
    id: int


async def clicks(tx: Executor, changes: Sequence[ClickChange]) -> None:
    """Give clicks their new people, address and user agent."""
    await tx.executemany(
        "UPDATE clicks SET account_upn = ?, account_object_id = ?, recipient = ?, sender = ?, ip_address = ?, "
        "user_agent = ? WHERE id = ?", changes)


async def messages(tx: Executor, keys: Sequence[tuple[str, str]], alias: str, alias_id: str, name: str) -> None:
    """The Teams messages (conversation id, message id) now sent by ``alias`` (ids ``alias_id``, shown as
    ``name``), their text gone."""
    await tx.executemany(
        "UPDATE teams_messages SET sender_upn = ?, sender_aad_object_id = ?, sender_id = ?, sender_name = ?, "
        "snippet = '', subject = NULL WHERE conversation_id = ? AND message_id = ?",
        [(alias, alias_id, alias_id, name, conversation_id, message_id) for conversation_id, message_id in keys])


async def users(tx: Executor, user_ids: Sequence[str]) -> None:
    """Forget the bot's look-ups of these Teams users."""
    await tx.executemany("DELETE FROM teams_users WHERE user_id = ?", [(u,) for u in user_ids])


async def alerts(tx: Executor, changes: Sequence[AlertChange]) -> None:
    """Give alerts their new people, texts, evidence, details and comments."""
    await tx.executemany(
        "UPDATE alerts SET account_upn = ?, account_object_id = ?, sender = ?, assigned_to = ?, title = ?, "
        "description = ?, evidence = ?, details = ?, comments = ? WHERE id = ?", changes)


async def incidents(tx: Executor, changes: Sequence[IncidentChange]) -> None:
    """Give incidents their new assignee, title and comments."""
    await tx.executemany(
        "UPDATE incidents SET assigned_to = ?, title = ?, comments = ?, resolving_comment = ? WHERE id = ?",
        changes)


async def entities(tx: Executor, upn: str, alias: str) -> int:
    """The incidents' entities that are the (lower-case) ``upn`` become ``alias``; how many changed."""
    return await tx.execute("UPDATE incident_entities SET value = ? WHERE LOWER(value) = ?", (alias, upn))


async def actions(tx: Executor, changes: Sequence[ActionChange]) -> None:
    """Give actions taken on alerts their new actor and detail."""
    await tx.executemany("UPDATE alert_actions SET actor = ?, actor_name = ?, detail = ? WHERE id = ?", changes)


async def outbox(tx: Executor, changes: Sequence[OutboxChange]) -> None:
    """Give notifications their new payload, result and last error."""
    await tx.executemany("UPDATE outbox SET payload = ?, result = ?, last_error = ? WHERE id = ?", changes)


async def conversations(tx: Executor, changes: Sequence[ConversationChange]) -> None:
    """Give the bot's conversations their new reference."""
    await tx.executemany("UPDATE teams_conversations SET reference = ? WHERE conversation_id = ?", changes)


async def authors(tx: Executor, table: Authored, changes: Sequence[Authorship]) -> None:
    """Give rows of ``table`` their new author."""
    author, key = AUTHORS[table]
    await tx.executemany(f"UPDATE {table} SET {author} = ? WHERE {key} = ?", changes)


async def quarantine(tx: Executor, changes: Sequence[QuarantineChange]) -> None:
    """Give quarantined messages their new sender and the people who hid or released them."""
    await tx.executemany(
        "UPDATE quarantined_messages SET sender = ?, sender_aad_object_id = ?, requested_by = ?, released_by = ? "
        "WHERE id = ?", changes)


async def reports(tx: Executor, changes: Sequence[ReportChange]) -> None:
    """Give message reports their new reporter; their note goes."""
    await tx.executemany(
        "UPDATE message_reports SET reporter_id = ?, reporter_aad_object_id = ?, reporter_name = ?, note = '' "
        "WHERE id = ?", changes)


async def audit(tx: Executor, changes: Sequence[AuditChange]) -> None:
    """Give audit log entries their new actor, target and detail."""
    await tx.executemany(
        "UPDATE audit_log SET actor = ?, actor_name = ?, actor_upn = ?, target = ?, detail = ? WHERE id = ?", changes)


async def sessions(tx: Executor, token_hashes: Sequence[str]) -> None:
    """Delete these console sessions."""
    await tx.executemany("DELETE FROM console_sessions WHERE token_hash = ?", [(t,) for t in token_hashes])


async def coverage(tx: Executor, targets: Sequence[tuple[str, str]]) -> None:
    """Delete these coverage targets (kind, target id)."""
    await tx.executemany("DELETE FROM coverage_targets WHERE kind = ? AND target_id = ?", targets)


async def truncate_log(db: Database) -> None:
    """SQLite: copy the write-ahead log into the file and empty it, so the log keeps no page as it was
    before the last writes. Nothing on PostgreSQL."""
    if db.dialect == "sqlite":
        await db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
