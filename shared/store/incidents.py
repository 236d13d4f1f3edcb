"""Reading and writing incidents and the entities they are about."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.alerts.model import Classification, Incident, IncidentStatus, Severity
from shared.store.alerts import comments_from, ts, where_clause, with_contains
from shared.store.database import Database, Executor, Row
from shared.store.purge import BATCH


def incident_from_row(r: Row) -> Incident:
    return Incident(
        id=int(r["id"]),
        title=r["title"],
        severity=Severity(r["severity"]),
        status=IncidentStatus(r["status"]),
        classification=Classification(r["classification"]),
        determination=r["determination"],
        assigned_to=r["assigned_to"],
        created_at=datetime.fromtimestamp(r["created_at"], UTC),
        updated_at=datetime.fromtimestamp(r["updated_at"], UTC),
        resolved_at=ts(r["resolved_at"]),
        first_activity=datetime.fromtimestamp(r["first_activity"], UTC),
        last_activity=datetime.fromtimestamp(r["last_activity"], UTC),
        alert_count=int(r["alert_count"]),
        resolving_comment=r["resolving_comment"],
        comments=comments_from(r["comments"]),
    )


@dataclass(frozen=True, slots=True)
class IncidentFilter:
    status: str | None = None
    severity: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    title: str | None = None  # contained in the title, any case
    user: str | None = None  # one of its alerts is about this UPN, any case
    url: str | None = None  # one of its alerts' URLs contains this, any case
    top: int = 100
    skip: int = 0

    def where(self) -> tuple[str, list[Any]]:
        where, params = where_clause({"status": self.status, "severity": self.severity}, self.since, self.until)
        where, params = with_contains(where, params, {"title": self.title})
        if self.user or self.url:
            inner, inner_params = where_clause(
                {"LOWER(account_upn)": self.user.lower() if self.user else None}, None, None)
            inner, inner_params = with_contains(inner, inner_params, {"url": self.url})
            clause = f"id IN (SELECT incident_id FROM alerts{inner})"
            where = f"{where} AND {clause}" if where else f" WHERE {clause}"
            params = [*params, *inner_params]
        return where, params


class IncidentStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, incident_id: int, tx: Executor | None = None) -> Incident | None:
        row = await (tx or self.db).fetchone("SELECT * FROM incidents WHERE id = ?", (incident_id,))
        return incident_from_row(row) if row else None

    async def page(self, flt: IncidentFilter) -> tuple[list[Incident], int]:
        where, params = flt.where()
        total = await self.db.fetchone(f"SELECT COUNT(*) AS n FROM incidents{where}", params)
        rows = await self.db.fetchall(
            f"SELECT * FROM incidents{where} ORDER BY created_at DESC, id DESC "
            f"LIMIT {int(flt.top)} OFFSET {int(flt.skip)}",
            params,
        )
        return [incident_from_row(r) for r in rows], int(total["n"]) if total else 0

    @staticmethod
    async def find_open(tx: Executor, entities: list[tuple[str, str]], since: float, max_alerts: int) -> int | None:
        """The most recently active open incident sharing an entity, still below its alert cap."""
        if not entities:
            return None
        match = " OR ".join("(e.kind = ? AND e.value = ?)" for _ in entities)
        params: list[Any] = [p for pair in entities for p in pair]
        row = await tx.fetchone(
            f"SELECT i.id FROM incident_entities e JOIN incidents i ON i.id = e.incident_id "
            f"WHERE ({match}) AND i.status <> 'resolved' AND i.last_activity >= ? AND i.alert_count < ? "
            f"ORDER BY i.last_activity DESC, i.id DESC LIMIT 1",
            (*params, since, max_alerts),
        )
        return int(row["id"]) if row else None

    @staticmethod
    async def create(tx: Executor, *, title: str, severity: str, at: float, first_activity: float) -> int:
        await tx.execute(
            "INSERT INTO incidents (title, severity, status, created_at, updated_at, first_activity, "
            "last_activity, alert_count) VALUES (?, ?, 'active', ?, ?, ?, ?, 0)",
            (title, severity, at, at, first_activity, first_activity),
        )
        row = await tx.fetchone("SELECT MAX(id) AS id FROM incidents WHERE created_at = ?", (at,))
        assert row is not None
        return int(row["id"])

    @staticmethod
    async def count_alert(tx: Executor, incident_id: int, last_activity: float) -> None:
        """Count one more alert in an incident, its last activity moved forward to ``last_activity``."""
        await tx.execute(
            "UPDATE incidents SET alert_count = alert_count + 1, last_activity = CASE WHEN "
            "last_activity < ? THEN ? ELSE last_activity END WHERE id = ?",
            (last_activity, last_activity, incident_id),
        )

    @staticmethod
    async def status(tx: Executor, incident_id: int) -> str | None:
        """An incident's status as stored, or None when there is no such incident."""
        row = await tx.fetchone("SELECT status FROM incidents WHERE id = ?", (incident_id,))
        return str(row["status"]) if row else None

    @staticmethod
    async def add_entities(tx: Executor, incident_id: int, entities: list[tuple[str, str]]) -> None:
        for kind, value in entities:
            await tx.execute(
                "INSERT INTO incident_entities (kind, value, incident_id) VALUES (?, ?, ?) "
                "ON CONFLICT (kind, value, incident_id) DO NOTHING",
                (kind, value, incident_id),
            )

    @staticmethod
    async def set_fields(tx: Executor, incident_id: int, fields: dict[str, Any]) -> None:
        assigns = ", ".join(f"{k} = ?" for k in fields)
        await tx.execute(f"UPDATE incidents SET {assigns} WHERE id = ?", (*fields.values(), incident_id))


async def purge_incidents(db: Database, before: float) -> tuple[int, int]:
    """Delete incidents whose last activity is before ``before`` — each whole, with its alerts, events,
    entities and actions, so none is left with some of its alerts — then alerts outside any incident.
    Returns (incidents, alerts) deleted."""
    incidents = alerts = 0
    while True:
        rows = await db.fetchall(f"SELECT id FROM incidents WHERE last_activity < ? ORDER BY id LIMIT {BATCH // 10}",
                                 (before,))
        if not rows:
            break
        async with db.transaction() as tx:
            for row in rows:
                alerts += await _drop_alerts(tx, "incident_id = ?", (int(row["id"]),))
                await tx.execute("DELETE FROM incident_entities WHERE incident_id = ?", (int(row["id"]),))
                await tx.execute("DELETE FROM alert_actions WHERE incident_id = ?", (int(row["id"]),))
                incidents += await tx.execute("DELETE FROM incidents WHERE id = ?", (int(row["id"]),))
    async with db.transaction() as tx:
        alerts += await _drop_alerts(tx, "incident_id IS NULL AND last_activity < ?", (before,))
    return incidents, alerts


async def _drop_alerts(tx: Executor, where: str, params: tuple[object, ...]) -> int:
    inner = f"SELECT id FROM alerts WHERE {where}"
    await tx.execute(f"DELETE FROM alert_events WHERE alert_id IN ({inner})", params)
    await tx.execute(f"DELETE FROM alert_actions WHERE alert_id IN ({inner})", params)
    return await tx.execute(f"DELETE FROM alerts WHERE {where}", params)
