"""The bot's own tables: conversations it is installed in, cards it posted, people it looked up, its settings.

The messages it keeps as evidence are in ``shared.store.messages``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.store import audit
from shared.store.database import Database, Executor, Row
from shared.store.purge import BATCH, delete_in_batches

# The bot setting holding the conversation alerts go to (an admin sets it by saying `alerts here`).
SECURITY_CHANNEL = "security_channel"


def _dt(value: Any) -> datetime | None:
    return datetime.fromtimestamp(float(value), UTC) if value is not None else None


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
    """A person the bot looked up through the connector."""

    user_id: str
    aad_object_id: str | None
    name: str
    upn: str | None
    tenant_id: str | None
    looked_up_at: datetime


@dataclass(frozen=True, slots=True)
class PostedCard:
    """A card the bot posted under a key (an incident's), so a later version updates it in place."""

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
        """The conversation with this id, installed or not, or None."""
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
        """Every conversation the bot is installed in, by id."""
        rows = await self._db.fetchall(
            "SELECT * FROM teams_conversations WHERE installed = ? ORDER BY conversation_id", (True,))
        return [_conversation(r) for r in rows]

    # Posted cards.

    async def card(self, card_key: str) -> PostedCard | None:
        """The card posted under ``card_key``, or None."""
        row = await self._db.fetchone("SELECT * FROM teams_cards WHERE card_key = ?", (card_key,))
        return PostedCard(row["card_key"], row["conversation_id"], row["activity_id"]) if row else None

    async def record_card(self, card: PostedCard, at: datetime) -> None:
        """Store (or move) the activity a card was posted as."""
        await self._db.execute(
            "INSERT INTO teams_cards (card_key, conversation_id, activity_id, posted_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (card_key) DO UPDATE SET conversation_id = excluded.conversation_id, "
            "activity_id = excluded.activity_id, updated_at = excluded.updated_at",
            (card.card_key, card.conversation_id, card.activity_id, at.timestamp(), at.timestamp()),
        )

    async def touch_card(self, card_key: str, at: datetime) -> None:
        """Note that the card was updated at ``at``."""
        await self._db.execute("UPDATE teams_cards SET updated_at = ? WHERE card_key = ?", (at.timestamp(), card_key))

    # Users looked up through the connector.

    async def user(self, user_id: str) -> StoredUser | None:
        """The look-up of one person by Bot Framework user id, or None."""
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
        """Store or refresh look-ups of people."""
        await self._db.executemany(
            "INSERT INTO teams_users (user_id, aad_object_id, name, upn, tenant_id, looked_up_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET aad_object_id = excluded.aad_object_id, "
            "name = excluded.name, upn = excluded.upn, tenant_id = excluded.tenant_id, "
            "looked_up_at = excluded.looked_up_at",
            [(u.user_id, u.aad_object_id, u.name, u.upn, u.tenant_id, u.looked_up_at.timestamp()) for u in users],
        )

    # Settings.

    async def setting(self, name: str) -> str | None:
        """The value of a bot setting, or None when it was never set."""
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


async def purge_users(db: Executor, before: float) -> int:
    """Delete the bot's look-ups of people made before ``before``."""
    return await delete_in_batches(
        db, f"DELETE FROM teams_users WHERE user_id IN (SELECT user_id FROM teams_users WHERE looked_up_at < ? "
            f"LIMIT {BATCH})", (before,))
