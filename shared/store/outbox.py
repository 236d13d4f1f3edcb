"""The ``outbox`` table: the one place its rows are read and written (``shared.outbox`` delivers them).

Payloads are stored as compact JSON; an item is *waiting* while it is pending and no worker's lease on
it runs (``lease_until <= now``): only a waiting item's payload may still be changed.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.store.database import Database, Executor, Row
from shared.store.purge import BATCH, delete_in_batches

__all__ = ["Backlog", "Delivery", "OutboxItem", "OutboxTable", "Retrying"]


def _dump(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    attempts: int
    status: str
    created_at: float
    next_attempt_at: float
    last_error: str | None
    dedupe_key: str | None
    result: dict[str, Any] | None

    @classmethod
    def from_row(cls, r: Row) -> OutboxItem:
        return cls(
            id=int(r["id"]),
            kind=r["kind"],
            key=r["key"],
            payload=json.loads(r["payload"]),
            attempts=int(r["attempts"]),
            status=r["status"],
            created_at=float(r["created_at"]),
            next_attempt_at=float(r["next_attempt_at"]),
            last_error=r["last_error"],
            dedupe_key=r["dedupe_key"],
            result=json.loads(r["result"]) if r["result"] else None,
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one item fared, as an incident's story tells it; ``payload`` is the stored JSON text."""

    kind: str
    status: str
    created_at: float
    done_at: float | None
    attempts: int
    last_error: str | None
    payload: str = ""


@dataclass(frozen=True, slots=True)
class Backlog:
    """The items of one kind and status not done yet: how many, and when the oldest was added."""

    kind: str
    status: str
    count: int
    oldest: float


@dataclass(frozen=True, slots=True)
class Retrying:
    """The items of one kind that failed and wait to be tried again: how many, and the newest one's error."""

    kind: str
    count: int
    last_error: str


class OutboxTable:
    """Rows of ``outbox``: added, claimed under a lease, finished, and edited while they wait."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, tx: Executor, kind: str, key: str, payload: dict[str, Any], dedupe_key: str | None,
                     now: float, due: float) -> int | None:
        """Add a pending item; None when ``dedupe_key`` is taken (the caller's transaction stays usable)."""
        # ON CONFLICT keeps the caller's transaction alive on a repeat (PostgreSQL aborts it on an error).
        row = await tx.fetchone(
            "INSERT INTO outbox (kind, key, payload, dedupe_key, status, attempts, created_at, next_attempt_at) "
            "VALUES (?, ?, ?, ?, 'pending', 0, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
            (kind, key, _dump(payload), dedupe_key, now, due),
        )
        return int(row["id"]) if row else None

    async def replace_waiting(self, tx: Executor, dedupe_key: str, payload: dict[str, Any], now: float) -> int | None:
        """Give the waiting item of slot ``dedupe_key`` this payload; its id, or None when none waits."""
        row = await tx.fetchone(
            "UPDATE outbox SET payload = ? WHERE dedupe_key = ? AND status = 'pending' AND lease_until <= ? "
            "RETURNING id",
            (_dump(payload), dedupe_key, now),
        )
        return int(row["id"]) if row else None

    async def release_slot(self, tx: Executor, dedupe_key: str) -> None:
        """The item holding ``dedupe_key`` gives the key up (to a newer item of the same slot)."""
        await tx.execute("UPDATE outbox SET dedupe_key = NULL WHERE dedupe_key = ?", (dedupe_key,))

    async def waiting_payload(self, tx: Executor, dedupe_key: str, now: float) -> dict[str, Any] | None:
        """The payload of the item named ``dedupe_key`` while it still waits, else None."""
        row = await tx.fetchone(
            "SELECT payload FROM outbox WHERE dedupe_key = ? AND status = 'pending' AND lease_until <= ?",
            (dedupe_key, now),
        )
        return dict(json.loads(row["payload"])) if row else None

    async def edit_waiting(self, tx: Executor, kind: str, key: str, now: float,
                           edit: Callable[[dict[str, Any]], bool], *, newest: int = 50) -> bool:
        """Edit the newest waiting item of ``kind`` and ``key`` whose payload ``edit`` changes (it returns
        True when it did); True once one is stored, False when none was changed."""
        rows = await tx.fetchall(
            "SELECT id, payload FROM outbox WHERE kind = ? AND key = ? AND status = 'pending' "
            f"AND lease_until <= ? ORDER BY id DESC LIMIT {int(newest)}",
            (kind, key, now),
        )
        for row in rows:
            payload = json.loads(row["payload"])
            if not edit(payload):
                continue
            changed = await tx.execute(
                "UPDATE outbox SET payload = ? WHERE id = ? AND status = 'pending' AND lease_until <= ?",
                (_dump(payload), row["id"], now),
            )
            return bool(changed)
        return False

    async def claim(self, kinds: list[str], limit: int, now: float, lease_until: float,
                    worker: str) -> list[OutboxItem]:
        """Lease up to ``limit`` due items of ``kinds`` to ``worker``: per key, only the oldest pending one."""
        lock = " FOR UPDATE SKIP LOCKED" if self._db.dialect == "postgresql" else ""
        marks = ", ".join("?" for _ in kinds)
        async with self._db.transaction() as tx:
            rows = await tx.fetchall(
                f"SELECT * FROM outbox o WHERE status = 'pending' AND next_attempt_at <= ? AND lease_until <= ? "
                f"AND kind IN ({marks}) AND (key = '' OR NOT EXISTS (SELECT 1 FROM outbox p WHERE p.key = o.key "
                f"AND p.status = 'pending' AND p.id < o.id)) ORDER BY id LIMIT {int(limit)}{lock}",
                (now, now, *kinds),
            )
            if not rows:
                return []
            ids = [int(r["id"]) for r in rows]
            await tx.execute(
                f"UPDATE outbox SET lease_until = ?, leased_by = ? WHERE id IN ({', '.join('?' for _ in ids)})",
                (lease_until, worker, *ids),
            )
        return [OutboxItem.from_row(r) for r in rows]

    async def retry(self, item_id: int, worker: str, attempts: int, next_attempt_at: float, error: str) -> None:
        """Put a leased item back, due again at ``next_attempt_at`` (only if ``worker`` still holds it)."""
        await self._db.execute(
            "UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ?, lease_until = 0 "
            "WHERE id = ? AND leased_by = ?",
            (attempts, next_attempt_at, error, item_id, worker),
        )

    async def finish(self, item_id: int, status: str, attempts: int, result: dict[str, Any] | None,
                     error: str | None, now: float) -> None:
        """Mark an item done or failed for good."""
        await self._db.execute(
            "UPDATE outbox SET status = ?, attempts = ?, result = ?, last_error = ?, done_at = ?, lease_until = 0 "
            "WHERE id = ?",
            (status, attempts, json.dumps(result) if result is not None else None, error, now, item_id),
        )

    async def list(self, status: str | None = None, *, limit: int = 500) -> list[OutboxItem]:
        """Items of one status, oldest first; without a status, the newest of all."""
        if status:
            rows = await self._db.fetchall(
                f"SELECT * FROM outbox WHERE status = ? ORDER BY id LIMIT {int(limit)}", (status,))
        else:
            rows = await self._db.fetchall(f"SELECT * FROM outbox ORDER BY id DESC LIMIT {int(limit)}")
        return [OutboxItem.from_row(r) for r in rows]

    async def result_of(self, dedupe_key: str) -> dict[str, Any] | None:
        """What the delivered item named ``dedupe_key`` answered, or None."""
        row = await self._db.fetchone("SELECT result FROM outbox WHERE dedupe_key = ? AND status = 'done'",
                                      (dedupe_key,))
        return json.loads(row["result"]) if row and row["result"] else None

    async def purge_finished(self, before: float) -> int:
        """Delete items delivered or failed for good before ``before``."""
        return await delete_in_batches(
            self._db, f"DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE status IN ('done', 'failed') "
                      f"AND done_at < ? LIMIT {BATCH})", (before,))

    async def drop_from_payloads(self, kind: str, field: str) -> int:
        """Remove the top-level ``field`` from every queued payload of ``kind`` that has it; rows changed."""
        rows = await self._db.fetchall("SELECT id, payload FROM outbox WHERE kind = ? AND payload LIKE ?",
                                       (kind, f'%"{field}":%'))
        changed = 0
        for row in rows:
            stored = json.loads(row["payload"])
            if isinstance(stored, dict) and stored.pop(field, None) is not None:
                changed += await self._db.execute("UPDATE outbox SET payload = ? WHERE id = ?",
                                                  (_dump(stored), row["id"]))
        return changed

    async def deliveries_keyed(self, pattern: str) -> builtins.list[Delivery]:
        """Items whose dedupe key matches the LIKE ``pattern``, oldest first."""
        rows = await self._db.fetchall(
            "SELECT kind, status, created_at, done_at, attempts, last_error FROM outbox WHERE dedupe_key LIKE ? "
            "ORDER BY id", (pattern,))
        return [Delivery(r["kind"], r["status"], r["created_at"], r["done_at"], r["attempts"], r["last_error"])
                for r in rows]

    async def teams_deliveries_containing(self, fragment: str, *, limit: int = 100) -> builtins.list[Delivery]:
        """Teams items whose payload text contains ``fragment`` (a LIKE pattern), oldest first."""
        rows = await self._db.fetchall(
            "SELECT kind, status, created_at, done_at, attempts, last_error, payload FROM outbox WHERE kind = 'teams' "
            f"AND payload LIKE ? ORDER BY id LIMIT {int(limit)}", (f"%{fragment}%",))
        return [Delivery(r["kind"], r["status"], r["created_at"], r["done_at"], r["attempts"], r["last_error"],
                         r["payload"]) for r in rows]

    async def backlog(self) -> builtins.list[Backlog]:
        """The items not done, counted by kind and status."""
        rows = await self._db.fetchall(
            "SELECT kind, status, COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE status <> 'done' "
            "GROUP BY kind, status")
        return [Backlog(r["kind"], r["status"], int(r["n"]), float(r["oldest"])) for r in rows]

    async def retrying(self, kind: str) -> Retrying | None:
        """The items of ``kind`` that failed and wait to be tried again, or None when none does."""
        row = await self._db.fetchone(
            "SELECT COUNT(*) AS n, MAX(id) AS newest FROM outbox WHERE kind = ? AND status = 'pending' "
            "AND last_error IS NOT NULL", (kind,))
        if row is None or not row["n"]:
            return None
        newest = await self._db.fetchone("SELECT last_error FROM outbox WHERE id = ?", (row["newest"],))
        return Retrying(kind, int(row["n"]), str(newest["last_error"] or "") if newest else "")
