"""Teams messages kept as evidence (table ``teams_messages``), by conversation and message id."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from shared.evidence import EvidenceError, TeamsMessageEvidence
from shared.store.database import Database, Executor, Row
from shared.store.purge import BATCH, delete_in_batches

_EVIDENCE_COLUMNS = (
    "conversation_id", "message_id", "parent_message_id", "thread_id", "thread_type", "thread_sub_type",
    "tenant_id", "team_id", "team_name", "channel_id", "channel_name", "sender_aad_object_id", "sender_id",
    "sender_name", "sender_upn", "sender_tenant_id", "is_external", "urls", "snippet", "subject",
    "received_at", "modified_at", "deleted_at",
)  # fmt: skip
_UPSERT_EVIDENCE = (
    f"INSERT INTO teams_messages ({', '.join(_EVIDENCE_COLUMNS)}) VALUES ({', '.join('?' * len(_EVIDENCE_COLUMNS))}) "
    "ON CONFLICT (conversation_id, message_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _EVIDENCE_COLUMNS[2:])
)


def _ts(at: datetime | None) -> float | None:
    return at.timestamp() if at else None


def _dt(value: Any) -> datetime | None:
    return datetime.fromtimestamp(float(value), UTC) if value is not None else None


class EvidenceStore:
    """Teams messages kept as evidence, by (conversation id, message id)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def save(self, ev: TeamsMessageEvidence, *, tx: Executor | None = None) -> None:
        """Insert or replace the evidence of one message."""
        await (tx or self._db).execute(_UPSERT_EVIDENCE, (
            ev.conversation_id, ev.message_id, ev.parent_message_id, ev.thread_id, ev.thread_type,
            ev.thread_sub_type, ev.tenant_id, ev.team_id, ev.team_name, ev.channel_id, ev.channel_name,
            ev.sender_aad_object_id, ev.sender_id, ev.sender_name, ev.sender_upn, ev.sender_tenant_id,
            ev.is_external, json.dumps(list(ev.urls)), ev.snippet, ev.subject, ev.received_at.timestamp(),
            _ts(ev.modified_at), _ts(ev.deleted_at),
        ))  # fmt: skip

    async def get(self, conversation_id: str, message_id: str, *, tx: Executor | None = None
                  ) -> TeamsMessageEvidence | None:
        """The evidence of one message, or None."""
        row = await (tx or self._db).fetchone(
            "SELECT * FROM teams_messages WHERE conversation_id = ? AND message_id = ?",
            (conversation_id, message_id),
        )
        return evidence_from_row(row) if row else None

    async def mark_deleted(self, conversation_id: str, message_id: str, at: datetime, *,
                           tx: Executor | None = None) -> bool:
        """Soft delete: the evidence stays (an alert may point at it), marked with when it went."""
        changed = await (tx or self._db).execute(
            "UPDATE teams_messages SET deleted_at = ? WHERE conversation_id = ? AND message_id = ?",
            (at.timestamp(), conversation_id, message_id),
        )
        return changed > 0

    async def undelete(self, conversation_id: str, message_id: str, *, tx: Executor | None = None) -> None:
        """Clear the deletion mark: the message was restored in Teams."""
        await (tx or self._db).execute(
            "UPDATE teams_messages SET deleted_at = NULL WHERE conversation_id = ? AND message_id = ?",
            (conversation_id, message_id),
        )

    async def recent(self, since: datetime, *, limit: int = 500) -> list[TeamsMessageEvidence]:
        """Messages received since ``since``, newest first, at most ``limit``."""
        rows = await self._db.fetchall(
            f"SELECT * FROM teams_messages WHERE received_at >= ? ORDER BY received_at DESC LIMIT {int(limit)}",
            (since.timestamp(),),
        )
        return [evidence_from_row(r) for r in rows]

    async def count_since(self, since: datetime) -> int:
        """How many messages were received since ``since``."""
        row = await self._db.fetchone(
            "SELECT COUNT(*) AS n FROM teams_messages WHERE received_at >= ?", (since.timestamp(),))
        return int(row["n"]) if row else 0

    def readable_by_others(self, start: float, end: float) -> AsyncIterator[Row]:
        """Rows (``evidence_from_row`` reads one) of the messages received within [start, end] that other
        people read, oldest first, streamed: deleted messages and personal chats with the bot are left out."""
        return self._db.iterate(
            "SELECT * FROM teams_messages WHERE received_at >= ? AND received_at <= ? AND deleted_at IS NULL "
            "AND (thread_sub_type <> 'personal' OR conversation_id LIKE '19:%') ORDER BY received_at", (start, end))


def evidence_from_row(r: Row) -> TeamsMessageEvidence:
    """A ``teams_messages`` row as evidence; raises ``EvidenceError`` when its URLs are unreadable."""
    try:
        urls = tuple(json.loads(r["urls"]))
    except (TypeError, ValueError) as exc:
        raise EvidenceError(f"stored URLs of message {r['message_id']!r} are unreadable") from exc
    received = _dt(r["received_at"])
    assert received is not None
    return TeamsMessageEvidence(
        conversation_id=r["conversation_id"], message_id=r["message_id"],
        parent_message_id=r["parent_message_id"], thread_id=r["thread_id"], thread_type=r["thread_type"],
        thread_sub_type=r["thread_sub_type"], tenant_id=r["tenant_id"], team_id=r["team_id"],
        team_name=r["team_name"], channel_id=r["channel_id"], channel_name=r["channel_name"],
        sender_aad_object_id=r["sender_aad_object_id"], sender_id=r["sender_id"], sender_name=r["sender_name"],
        sender_upn=r["sender_upn"], sender_tenant_id=r["sender_tenant_id"], is_external=bool(r["is_external"]),
        urls=urls, snippet=r["snippet"], subject=r["subject"], received_at=received,
        modified_at=_dt(r["modified_at"]), deleted_at=_dt(r["deleted_at"]),
    )  # fmt: skip


async def purge_messages(db: Executor, before: float) -> int:
    """Delete Teams messages kept as evidence that were received before ``before``."""
    return await delete_in_batches(
        db, "DELETE FROM teams_messages WHERE (conversation_id, message_id) IN (SELECT conversation_id, message_id "
            f"FROM teams_messages WHERE received_at < ? LIMIT {BATCH})", (before,))
