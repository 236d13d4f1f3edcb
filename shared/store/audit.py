"""The audit log: every change made from the console, the command line, the REST API or a card.

A change and its audit row are written in one transaction (``record`` takes the caller's), so the
log never shows a change that did not happen nor misses one that did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from shared.store.database import Database, Executor
from shared.store.purge import BATCH, delete_in_batches


class Who(Protocol):
    """Who made a change, and through which way in (``console``, ``cli``, ``api``, ``card``);
    ``shared.alerts.actions.Actor`` is one."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def via(self) -> str: ...


@runtime_checkable
class Principal(Protocol):
    """A ``Who`` whose identity provider also named them by their user principal name (a console user signed in
    with OpenID Connect): the UPN is kept with their changes, so a privacy request by UPN finds them."""

    @property
    def upn(self) -> str: ...


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    actor: str
    actor_name: str
    via: str
    action: str
    target: str
    detail: str
    id: int = 0


async def record(tx: Executor, actor: Who, action: str, target: str, detail: str = "", *,
                 at: float) -> None:
    """Write one audit row inside the transaction ``tx`` that makes the change."""
    upn = actor.upn if isinstance(actor, Principal) else ""
    await tx.execute(
        "INSERT INTO audit_log (at, actor, actor_name, actor_upn, via, action, target, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (at, actor.id, actor.name, upn, actor.via, action, target, detail),
    )


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which audit rows a listing wants; empty fields match everything."""

    actor: str | None = None
    via: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    top: int = 50
    skip: int = 0

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.actor:
            clauses.append("(LOWER(actor) = ? OR LOWER(actor_name) = ?)")
            params += [self.actor.lower(), self.actor.lower()]
        for column, value in (("via", self.via), ("action", self.action)):
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        for op, bound in ((">=", self.since), ("<", self.until)):
            if bound is not None:
                clauses.append(f"at {op} ?")
                params.append(bound.timestamp())
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


class AuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(self, flt: AuditFilter) -> tuple[list[AuditEntry], bool]:
        """A page of entries, newest first, and whether more follow."""
        where, params = flt.where()
        rows = await self._db.fetchall(
            f"SELECT * FROM audit_log{where} ORDER BY at DESC, id DESC LIMIT {int(flt.top) + 1} OFFSET {int(flt.skip)}",
            params,
        )
        entries = [
            AuditEntry(datetime.fromtimestamp(r["at"], UTC), r["actor"], r["actor_name"], r["via"], r["action"],
                       r["target"], r["detail"], int(r["id"]))
            for r in rows[: flt.top]
        ]
        return entries, len(rows) > flt.top


async def purge_audit(db: Executor, before: float) -> int:
    """Delete audit entries made before ``before`` (epoch seconds), in batches; return how many went."""
    return await delete_in_batches(
        db, f"DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < ? ORDER BY id LIMIT {BATCH})",
        (before,))
