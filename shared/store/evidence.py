"""The bot's tables: Teams message evidence, conversations and their references, posted cards, users, settings."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.evidence import EvidenceError, TeamsMessageEvidence
from shared.store import audit
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
SECURITY_CHANNEL = "security_channel"


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
        await (tx or self._db).execute(
            "UPDATE teams_messages SET deleted_at = NULL WHERE conversation_id = ? AND message_id = ?",
            (conversation_id, message_id),
        )

    async def recent(self, since: datetime, *, limit: int = 500) -> list[TeamsMessageEvidence]:
        rows = await self._db.fetchall(
            f"SELECT * FROM teams_messages WHERE received_at >= ? ORDER BY received_at DESC LIMIT {int(limit)}",
            (since.timestamp(),),
        )
        return [evidence_from_row(r) for r in rows]

    async def count_since(self, since: datetime) -> int:
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


@dataclass(frozen=True, slots=True)
class StoredConversation:
    """A conversation the bot was installed in, with the reference to post there."""

    conversation_id: str
    conversation_type: str
    reference: dict[str, Any]
    tenant_id: str | None = None
    team_id: str | None = None
    team_name: str | None = None
    channel_id: str | None = None
    channel_name: str | None = None
    installed: bool = True
    greeted: bool = False


@dataclass(frozen=True, slots=True)
class StoredUser:
    user_id: str
    aad_object_id: str | None
    name: str
    upn: str | None
    tenant_id: str | None
    looked_up_at: datetime


@dataclass(frozen=True, slots=True)
class PostedCard:
    card_key: str
    conversation_id: str
    activity_id: str


class ConversationStore:
    """Conversation references, posted cards, looked-up users and the bot's settings."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def remember(self, conv: StoredConversation, at: datetime, *, tx: Executor | None = None) -> bool:
        """Store or refresh a reference; returns True when the conversation has not been greeted yet."""
        db = tx or self._db
        await db.execute(
            "INSERT INTO teams_conversations (conversation_id, conversation_type, tenant_id, team_id, team_name, "
            "channel_id, channel_name, reference, installed, greeted, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (conversation_id) DO UPDATE SET "
            "conversation_type = excluded.conversation_type, tenant_id = excluded.tenant_id, "
            "team_id = COALESCE(excluded.team_id, teams_conversations.team_id), "
            "team_name = COALESCE(excluded.team_name, teams_conversations.team_name), "
            "channel_id = COALESCE(excluded.channel_id, teams_conversations.channel_id), "
            "channel_name = COALESCE(excluded.channel_name, teams_conversations.channel_name), "
            "reference = excluded.reference, installed = excluded.installed, updated_at = excluded.updated_at",
            (conv.conversation_id, conv.conversation_type, conv.tenant_id, conv.team_id, conv.team_name,
             conv.channel_id, conv.channel_name, json.dumps(conv.reference, separators=(",", ":")),
             conv.installed, False, at.timestamp()),
        )
        row = await db.fetchone("SELECT greeted FROM teams_conversations WHERE conversation_id = ?",
                                (conv.conversation_id,))
        return row is not None and not row["greeted"]

    async def mark_greeted(self, conversation_id: str, *, tx: Executor | None = None) -> bool:
        """Claim the greeting: True only for the one caller that flips the flag (greet once, even across replicas)."""
        changed = await (tx or self._db).execute(
            "UPDATE teams_conversations SET greeted = ? WHERE conversation_id = ? AND greeted = ?",
            (True, conversation_id, False),
        )
        return changed > 0

    async def forget(self, conversation_id: str, at: datetime, *, tx: Executor | None = None) -> None:
        """Uninstalled: drop the reference (the bot can no longer post there) but keep the row's history."""
        await (tx or self._db).execute(
            "UPDATE teams_conversations SET installed = ?, reference = '{}', greeted = ?, updated_at = ? "
            "WHERE conversation_id = ?",
            (False, False, at.timestamp(), conversation_id),
        )

    async def get(self, conversation_id: str) -> StoredConversation | None:
        row = await self._db.fetchone("SELECT * FROM teams_conversations WHERE conversation_id = ?",
                                      (conversation_id,))
        return _conversation(row) if row else None

    async def any_in_team(self, team_id: str) -> StoredConversation | None:
        """Some installed conversation of the team: a new channel thread is started from it."""
        row = await self._db.fetchone(
            "SELECT * FROM teams_conversations WHERE team_id = ? AND installed = ? ORDER BY updated_at DESC",
            (team_id, True),
        )
        return _conversation(row) if row else None

    async def installed(self) -> list[StoredConversation]:
        rows = await self._db.fetchall(
            "SELECT * FROM teams_conversations WHERE installed = ? ORDER BY conversation_id", (True,))
        return [_conversation(r) for r in rows]

    # Posted cards.

    async def card(self, card_key: str) -> PostedCard | None:
        row = await self._db.fetchone("SELECT * FROM teams_cards WHERE card_key = ?", (card_key,))
        return PostedCard(row["card_key"], row["conversation_id"], row["activity_id"]) if row else None

    async def record_card(self, card: PostedCard, at: datetime) -> None:
        await self._db.execute(
            "INSERT INTO teams_cards (card_key, conversation_id, activity_id, posted_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (card_key) DO UPDATE SET conversation_id = excluded.conversation_id, "
            "activity_id = excluded.activity_id, updated_at = excluded.updated_at",
            (card.card_key, card.conversation_id, card.activity_id, at.timestamp(), at.timestamp()),
        )

    async def touch_card(self, card_key: str, at: datetime) -> None:
        await self._db.execute("UPDATE teams_cards SET updated_at = ? WHERE card_key = ?", (at.timestamp(), card_key))

    # Users looked up through the connector.

    async def user(self, user_id: str) -> StoredUser | None:
        r = await self._db.fetchone("SELECT * FROM teams_users WHERE user_id = ?", (user_id,))
        if not r:
            return None
        looked = _dt(r["looked_up_at"])
        assert looked is not None
        return StoredUser(r["user_id"], r["aad_object_id"], r["name"], r["upn"], r["tenant_id"], looked)

    async def display_name(self, aad_object_id: str | None, upn: str | None) -> str | None:
        """The display name the bot looked up for a person known by Entra object id or UPN."""
        row = await self._db.fetchone(
            "SELECT name FROM teams_users WHERE (aad_object_id = ? OR LOWER(upn) = ?) AND name <> '' LIMIT 1",
            (aad_object_id or "", (upn or "").lower()),
        )
        return str(row["name"]) if row else None

    async def upn_of(self, aad_object_id: str) -> str | None:
        """The UPN (lower case) the bot looked up for an Entra object id."""
        row = await self._db.fetchone("SELECT upn FROM teams_users WHERE aad_object_id = ? AND upn <> '' LIMIT 1",
                                      (aad_object_id,))
        return str(row["upn"]).lower() if row and row["upn"] else None

    async def remember_users(self, users: Iterable[StoredUser]) -> None:
        await self._db.executemany(
            "INSERT INTO teams_users (user_id, aad_object_id, name, upn, tenant_id, looked_up_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET aad_object_id = excluded.aad_object_id, "
            "name = excluded.name, upn = excluded.upn, tenant_id = excluded.tenant_id, "
            "looked_up_at = excluded.looked_up_at",
            [(u.user_id, u.aad_object_id, u.name, u.upn, u.tenant_id, u.looked_up_at.timestamp()) for u in users],
        )

    # Settings.

    async def setting(self, name: str) -> str | None:
        row = await self._db.fetchone("SELECT value FROM bot_settings WHERE name = ?", (name,))
        return str(row["value"]) if row else None

    async def set_setting(self, name: str, value: str, at: datetime, by: str | None = None, *,
                          actor: audit.Who | None = None) -> None:
        """Set a bot setting; a person's change (``actor``) is audited in the same transaction."""
        async with self._db.transaction() as tx:
            await tx.execute(
                "INSERT INTO bot_settings (name, value, updated_at, updated_by) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, "
                "updated_by = excluded.updated_by",
                (name, value, at.timestamp(), by),
            )
            if actor is not None:
                await audit.record(tx, actor, f"bot.{name}", value, at=at.timestamp())


def _conversation(r: Row) -> StoredConversation:
    return StoredConversation(
        conversation_id=r["conversation_id"], conversation_type=r["conversation_type"],
        reference=json.loads(r["reference"] or "{}"), tenant_id=r["tenant_id"], team_id=r["team_id"],
        team_name=r["team_name"], channel_id=r["channel_id"], channel_name=r["channel_name"],
        installed=bool(r["installed"]), greeted=bool(r["greeted"]),
    )  # fmt: skip


async def purge_messages(db: Executor, before: float) -> int:
    """Delete Teams messages kept as evidence that were received before ``before``."""
    return await delete_in_batches(
        db, "DELETE FROM teams_messages WHERE (conversation_id, message_id) IN (SELECT conversation_id, message_id "
            f"FROM teams_messages WHERE received_at < ? LIMIT {BATCH})", (before,))


async def purge_users(db: Executor, before: float) -> int:
    """Delete the bot's look-ups of people made before ``before``."""
    return await delete_in_batches(
        db, f"DELETE FROM teams_users WHERE user_id IN (SELECT user_id FROM teams_users WHERE looked_up_at < ? "
            f"LIMIT {BATCH})", (before,))
