"""The quarantine's tables: one record per hidden message (``quarantined_messages``), and teams' AAD group
ids (``teams_groups``), which address a channel message in Graph."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.quarantine.model import JudgedLink, QuarantineRecord, State
from shared.store.database import Database, Executor, Row
from shared.store.purge import BATCH, delete_in_batches

__all__ = ["QuarantineFilter", "QuarantineStore", "purge_settled", "record_from_row"]


def _dt(value: Any) -> datetime | None:
    return datetime.fromtimestamp(float(value), UTC) if value is not None else None


def record_from_row(r: Row) -> QuarantineRecord:
    """The record a ``quarantined_messages`` row holds."""
    links = tuple(JudgedLink(str(x.get("url", "")), str(x.get("verdict", "")), str(x.get("source", "")),
                             str(x.get("reason", ""))) for x in json.loads(r["links"] or "[]"))
    requested, updated = _dt(r["requested_at"]), _dt(r["updated_at"])
    assert requested is not None and updated is not None
    return QuarantineRecord(
        id=int(r["id"]), conversation_id=r["conversation_id"], message_id=r["message_id"],
        target=json.loads(r["target"] or "{}"), sender=r["sender"], sender_aad_object_id=r["sender_aad_object_id"],
        links=links, reason=r["reason"], cause=r["cause"], last_action=r["last_action"], state=State(r["state"]),
        state_detail=r["state_detail"], generation=int(r["generation"]), page_token=r["page_token"],
        requested_by=r["requested_by"], requested_at=requested, hidden_at=_dt(r["hidden_at"]),
        released_by=r["released_by"], released_at=_dt(r["released_at"]), updated_at=updated,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class QuarantineFilter:
    """Which records a listing wants; empty fields match everything. ``sender`` and ``url`` match a part
    (case-insensitive), the times bound when the hide was asked for."""

    state: str | None = None
    sender: str | None = None
    url: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    top: int = 50
    skip: int = 0

    def where(self) -> tuple[str, list[Any]]:
        """The ``WHERE`` clause (empty when nothing is asked) and its parameters."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.state:
            clauses.append("state = ?")
            params.append(self.state)
        for column, value in (("sender", self.sender), ("links", self.url)):
            if value:
                clauses.append(f"LOWER({column}) LIKE ? ESCAPE '!'")
                escaped = value.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
                params.append(f"%{escaped}%")
        for op, bound in ((">=", self.since), ("<", self.until)):
            if bound is not None:
                clauses.append(f"requested_at {op} ?")
                params.append(bound.timestamp())
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


class QuarantineStore:
    """Quarantine records and teams' group ids. Writes that belong with others take the caller's transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, record_id: int, tx: Executor | None = None) -> QuarantineRecord | None:
        """The record ``record_id``, or None."""
        row = await (tx or self.db).fetchone("SELECT * FROM quarantined_messages WHERE id = ?", (record_id,))
        return record_from_row(row) if row else None

    async def of_message(self, conversation_id: str, message_id: str,
                         tx: Executor | None = None) -> QuarantineRecord | None:
        """The record of one Teams message, or None."""
        row = await (tx or self.db).fetchone(
            "SELECT * FROM quarantined_messages WHERE conversation_id = ? AND message_id = ?",
            (conversation_id, message_id))
        return record_from_row(row) if row else None

    async def by_page_token(self, token: str) -> QuarantineRecord | None:
        """The record whose explanation page has ``token``, or None."""
        row = await self.db.fetchone("SELECT * FROM quarantined_messages WHERE page_token = ?", (token,))
        return record_from_row(row) if row else None

    async def page(self, flt: QuarantineFilter) -> tuple[list[QuarantineRecord], bool]:
        """One page of records, newest first, and whether more follow."""
        where, params = flt.where()
        rows = await self.db.fetchall(
            f"SELECT * FROM quarantined_messages{where} ORDER BY id DESC LIMIT {int(flt.top) + 1} "
            f"OFFSET {int(flt.skip)}", params)
        return [record_from_row(r) for r in rows[: flt.top]], len(rows) > flt.top

    async def records(self, *, state: str | None = None, limit: int = 500) -> list[QuarantineRecord]:
        """Up to ``limit`` records (of one state, if given), newest first."""
        sql = "SELECT * FROM quarantined_messages"
        params: tuple[Any, ...] = ()
        if state:
            sql += " WHERE state = ?"
            params = (state,)
        rows = await self.db.fetchall(sql + f" ORDER BY id DESC LIMIT {int(limit)}", params)
        return [record_from_row(r) for r in rows]

    @staticmethod
    async def insert(tx: Executor, *, conversation_id: str, message_id: str, target: dict[str, Any],
                     sender: str | None, sender_aad_object_id: str | None, links: list[JudgedLink], reason: str,
                     cause: str, state: State, state_detail: str | None, requested_by: str | None,
                     now: float) -> int | None:
        """A new record; None when the message already has one (another replica, or an earlier request)."""
        row = await tx.fetchone(
            "INSERT INTO quarantined_messages (conversation_id, message_id, target, sender, sender_aad_object_id, "
            "links, reason, cause, last_action, state, state_detail, generation, page_token, requested_by, "
            "requested_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'hide', ?, ?, 1, ?, ?, ?, ?) "
            "ON CONFLICT (conversation_id, message_id) DO NOTHING RETURNING id",
            (conversation_id, message_id, json.dumps(target), sender, sender_aad_object_id,
             json.dumps([link.to_json() for link in links]), reason, cause, state.value, state_detail,
             secrets.token_urlsafe(18), requested_by, now, now),
        )
        return int(row["id"]) if row else None

    @staticmethod
    async def request(tx: Executor, record_id: int, *, action: str, state: State, by: str | None, now: float,
                      expect: tuple[State, ...], reason: str | None = None, cause: str | None = None,
                      target: dict[str, Any] | None = None) -> int | None:
        """Move a record to a new request (hide again, release); returns its new generation, or None when
        its state is not one of ``expect`` (someone else moved it first)."""
        marks = ", ".join("?" for _ in expect)
        sets = "last_action = ?, state = ?, state_detail = NULL, generation = generation + 1, updated_at = ?"
        params: list[Any] = [action, state.value, now]
        if action == "hide":
            sets += ", requested_by = ?, requested_at = ?"
            params += [by, now]
            if reason is not None:
                sets += ", reason = ?"
                params.append(reason)
            if cause is not None:
                sets += ", cause = ?"
                params.append(cause)
            if target is not None:
                sets += ", target = ?"
                params.append(json.dumps(target))
        else:
            sets += ", released_by = ?"
            params.append(by)
        row = await tx.fetchone(
            f"UPDATE quarantined_messages SET {sets} WHERE id = ? AND state IN ({marks}) RETURNING generation",
            (*params, record_id, *(s.value for s in expect)),
        )
        return int(row["generation"]) if row else None

    async def settle(self, record_id: int, generation: int, *, state: State, detail: str | None,
                     now: float) -> bool:
        """Record Graph's answer for request ``generation``; False when a later request overtook it."""
        extra = ""
        if state is State.HIDDEN:
            extra = ", hidden_at = ?"
        elif state is State.RELEASED:
            extra = ", released_at = ?"
        params: list[Any] = [state.value, detail, now]
        if extra:
            params.append(now)
        changed = await self.db.execute(
            f"UPDATE quarantined_messages SET state = ?, state_detail = ?, updated_at = ?{extra} "
            "WHERE id = ? AND generation = ?",
            (*params, record_id, generation),
        )
        return changed > 0

    async def last_settled(self) -> QuarantineRecord | None:
        """The record whose hide or release ended last (hidden, released or failed), or None."""
        row = await self.db.fetchone(
            "SELECT * FROM quarantined_messages WHERE state IN ('hidden', 'released', 'failed') "
            "ORDER BY updated_at DESC, id DESC LIMIT 1")
        return record_from_row(row) if row else None

    async def generation(self, record_id: int) -> int | None:
        """The record's current request generation, or None when there is no such record."""
        row = await self.db.fetchone("SELECT generation FROM quarantined_messages WHERE id = ?", (record_id,))
        return int(row["generation"]) if row else None

    # Teams' AAD group ids.

    async def remember_group(self, team_id: str, aad_group_id: str, now: float) -> None:
        """Keep (or replace) the AAD group id of team ``team_id``."""
        await self.db.execute(
            "INSERT INTO teams_groups (team_id, aad_group_id, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (team_id) DO UPDATE SET aad_group_id = excluded.aad_group_id, "
            "updated_at = excluded.updated_at",
            (team_id, aad_group_id, now),
        )

    async def group_of(self, team_id: str, tx: Executor | None = None) -> str | None:
        """The AAD group id of team ``team_id``, or None when Teams never told it."""
        row = await (tx or self.db).fetchone("SELECT aad_group_id FROM teams_groups WHERE team_id = ?", (team_id,))
        return str(row["aad_group_id"]) if row else None


async def purge_settled(db: Executor, before: float) -> int:
    """Delete released or failed quarantine records last changed before ``before`` (hidden ones stay:
    they are needed to release the message)."""
    return await delete_in_batches(
        db, f"DELETE FROM quarantined_messages WHERE id IN (SELECT id FROM quarantined_messages WHERE state IN "
            f"('released', 'failed') AND updated_at < ? LIMIT {BATCH})", (before,))
