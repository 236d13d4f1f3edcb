"""Reading and writing alerts, their events, the actions taken on them, and the engine's cursors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.alerts.model import Alert, AlertStatus, Classification, Comment, Severity
from shared.store.database import Database, Executor, Row

ALERT_COLUMNS = (
    "alert_key",
    "rule_id",
    "title",
    "description",
    "recommended_actions",
    "severity",
    "category",
    "status",
    "classification",
    "determination",
    "assigned_to",
    "incident_id",
    "group_key",
    "created_at",
    "updated_at",
    "resolved_at",
    "first_activity",
    "last_activity",
    "event_count",
    "url",
    "domain",
    "account_upn",
    "account_object_id",
    "workload",
    "conversation_id",
    "message_id",
    "sender",
    "report_id",
    "change_id",
    "evidence",
    "details",
    "comments",
)
_INSERT_ALERT = f"INSERT INTO alerts ({', '.join(ALERT_COLUMNS)}) VALUES ({', '.join('?' for _ in ALERT_COLUMNS)})"


def ts(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def comments_from(text: str | None) -> tuple[Comment, ...]:
    return tuple(Comment(c["comment"], c["by"], datetime.fromtimestamp(c["at"], UTC)) for c in json.loads(text or "[]"))


def alert_from_row(r: Row) -> Alert:
    return Alert(
        id=int(r["id"]),
        key=r["alert_key"],
        rule_id=r["rule_id"],
        title=r["title"],
        description=r["description"],
        severity=Severity(r["severity"]),
        category=r["category"],
        status=AlertStatus(r["status"]),
        classification=Classification(r["classification"]),
        determination=r["determination"],
        assigned_to=r["assigned_to"],
        incident_id=int(r["incident_id"]) if r["incident_id"] is not None else None,
        created_at=datetime.fromtimestamp(r["created_at"], UTC),
        updated_at=datetime.fromtimestamp(r["updated_at"], UTC),
        resolved_at=ts(r["resolved_at"]),
        first_activity=datetime.fromtimestamp(r["first_activity"], UTC),
        last_activity=datetime.fromtimestamp(r["last_activity"], UTC),
        event_count=int(r["event_count"]),
        url=r["url"],
        domain=r["domain"],
        account_upn=r["account_upn"],
        account_object_id=r["account_object_id"],
        workload=r["workload"],
        conversation_id=r["conversation_id"],
        message_id=r["message_id"],
        sender=r["sender"],
        report_id=r["report_id"],
        change_id=int(r["change_id"]) if r["change_id"] is not None else None,
        evidence=json.loads(r["evidence"]),
        details=json.loads(r["details"]),
        comments=comments_from(r["comments"]),
        recommended_actions=r["recommended_actions"],
    )


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which alerts a listing wants; empty fields match everything. ``skip``/``top`` page the result."""

    status: str | None = None
    severity: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    incident_id: int | None = None
    rule_id: str | None = None
    title: str | None = None  # contained in the title, any case
    user: str | None = None  # the account's UPN, any case
    url: str | None = None  # contained in the URL, any case
    top: int = 100
    skip: int = 0

    def where(self) -> tuple[str, list[Any]]:
        where, params = where_clause(
            {"status": self.status, "severity": self.severity, "incident_id": self.incident_id,
             "rule_id": self.rule_id, "LOWER(account_upn)": self.user.lower() if self.user else None},
            self.since, self.until,
        )
        return with_contains(where, params, {"title": self.title, "url": self.url})


def with_contains(where: str, params: list[Any], contains: dict[str, str | None]) -> tuple[str, list[Any]]:
    """``where`` narrowed to rows whose columns contain the given texts, any case (LIKE, escaped)."""
    clauses = [where.removeprefix(" WHERE ")] if where else []
    for column, text in contains.items():
        if text:
            escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append(f"LOWER({column}) LIKE ? ESCAPE '\\'")
            params = [*params, f"%{escaped}%"]
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def where_clause(equal: dict[str, Any], since: datetime | None, until: datetime | None) -> tuple[str, list[Any]]:
    """``WHERE`` for listings: each given column equal to its value, ``created_at`` within [since, until)."""
    clauses = [f"{column} = ?" for column, value in equal.items() if value is not None]
    params: list[Any] = [value for value in equal.values() if value is not None]
    for op, bound in ((">=", since), ("<", until)):
        if bound is not None:
            clauses.append(f"created_at {op} ?")
            params.append(bound.timestamp())
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


@dataclass(frozen=True, slots=True)
class IncidentAlertFacts:
    """What an incident's summary is recomputed from, for one of its alerts (values as stored)."""

    severity: str
    url: str
    account_upn: str | None
    account_object_id: str | None
    workload: str
    first_activity: float
    last_activity: float
    details: str  # JSON
    status: str


class AlertStore:
    """Alerts as stored. Writes that belong with others take the caller's transaction (``tx``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, tx: Executor, values: dict[str, Any]) -> int:
        await tx.execute(_INSERT_ALERT, [values.get(c) for c in ALERT_COLUMNS])
        row = await tx.fetchone("SELECT id FROM alerts WHERE alert_key = ?", (values["alert_key"],))
        assert row is not None
        return int(row["id"])

    @staticmethod
    async def event_seen(tx: Executor, event_key: str) -> bool:
        return await tx.fetchone("SELECT 1 AS x FROM alert_events WHERE event_key = ?", (event_key,)) is not None

    @staticmethod
    async def add_event(
        tx: Executor, event_key: str, alert_id: int, report_id: str, *, suppressed: bool, at: float
    ) -> None:
        await tx.execute(
            "INSERT INTO alert_events (event_key, alert_id, report_id, suppressed, at) VALUES (?, ?, ?, ?, ?)",
            (event_key, alert_id, report_id, suppressed, at),
        )

    @staticmethod
    async def fold_events(tx: Executor, alert_id: int, events: int, last_activity: float, at: float) -> None:
        """Count ``events`` more events into an alert, its last activity moved forward to ``last_activity``."""
        await tx.execute(
            "UPDATE alerts SET event_count = event_count + ?, last_activity = "
            "CASE WHEN last_activity < ? THEN ? ELSE last_activity END, updated_at = ? "
            "WHERE id = ?",
            (events, last_activity, last_activity, at, alert_id),
        )

    @staticmethod
    async def open_in_group(tx: Executor, rule_id: str, group_key: str, since: float) -> Row | None:
        return await tx.fetchone(
            "SELECT id, incident_id FROM alerts WHERE rule_id = ? AND group_key = ? AND status <> 'resolved' "
            "AND last_activity >= ? ORDER BY id DESC LIMIT 1",
            (rule_id, group_key, since),
        )

    async def get(self, alert_id: int, tx: Executor | None = None) -> Alert | None:
        row = await (tx or self.db).fetchone("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        return alert_from_row(row) if row else None

    async def by_key(self, key: str) -> Alert | None:
        row = await self.db.fetchone("SELECT * FROM alerts WHERE alert_key = ?", (key,))
        return alert_from_row(row) if row else None

    async def any_stored(self) -> bool:
        """Whether any alert has been stored."""
        return await self.db.fetchone("SELECT id FROM alerts LIMIT 1") is not None

    async def keys_present(self, keys: list[str]) -> set[str]:
        """The draft keys already stored: as an alert's key, or as an event folded into another alert."""
        found: set[str] = set()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = await self.db.fetchall(f"SELECT event_key FROM alert_events WHERE event_key IN ({marks})", chunk)
            found.update(r["event_key"] for r in rows)
        return found

    async def page(self, flt: AlertFilter) -> tuple[list[Alert], int]:
        """A page of alerts, newest first, and how many match in all."""
        where, params = flt.where()
        total = await self.db.fetchone(f"SELECT COUNT(*) AS n FROM alerts{where}", params)
        rows = await self.db.fetchall(
            f"SELECT * FROM alerts{where} ORDER BY created_at DESC, id DESC "
            f"LIMIT {int(flt.top)} OFFSET {int(flt.skip)}",
            params,
        )
        return [alert_from_row(r) for r in rows], int(total["n"]) if total else 0

    async def counts_by_day(self, since: datetime) -> list[tuple[int, str, int]]:
        """(UTC day as epoch seconds, severity, alerts created) for every day from ``since`` on."""
        bucket = ("FLOOR(created_at / 86400)" if self.db.dialect == "postgresql"
                  else "CAST(created_at / 86400 AS INTEGER)")
        rows = await self.db.fetchall(
            f"SELECT {bucket} AS d, severity, COUNT(*) AS n FROM alerts WHERE created_at >= ? GROUP BY d, severity",
            (since.timestamp(),))
        return [(int(r["d"]) * 86400, r["severity"], int(r["n"])) for r in rows]

    async def ids_of_message(self, conversation_id: str, message_id: str) -> list[int]:
        """The ids of the alerts raised on one Teams message, oldest first."""
        rows = await self.db.fetchall(
            "SELECT id FROM alerts WHERE conversation_id = ? AND message_id = ? ORDER BY id",
            (conversation_id, message_id))
        return [int(r["id"]) for r in rows]

    async def messages_after(self, position: int, limit: int) -> list[tuple[int, str | None, str | None]]:
        """(id, conversation id, message id) of up to ``limit`` alerts after id ``position``, in id order."""
        rows = await self.db.fetchall(
            f"SELECT id, conversation_id, message_id FROM alerts WHERE id > ? ORDER BY id LIMIT {int(limit)}",
            (position,))
        return [(int(r["id"]), r["conversation_id"], r["message_id"]) for r in rows]

    async def of_incident(self, incident_id: int, tx: Executor | None = None) -> list[Alert]:
        rows = await (tx or self.db).fetchall(
            "SELECT * FROM alerts WHERE incident_id = ? ORDER BY created_at, id", (incident_id,)
        )
        return [alert_from_row(r) for r in rows]

    @staticmethod
    async def ids_of_incident(tx: Executor, incident_id: int) -> list[int]:
        """The ids of an incident's alerts."""
        rows = await tx.fetchall("SELECT id FROM alerts WHERE incident_id = ?", (incident_id,))
        return [int(row["id"]) for row in rows]

    @staticmethod
    async def facts_of_incident(tx: Executor, incident_id: int) -> list[IncidentAlertFacts]:
        """What the incident's summary (count, severity, span, title, status) is made of, per alert."""
        rows = await tx.fetchall(
            "SELECT severity, url, account_upn, account_object_id, workload, first_activity, last_activity, "
            "details, status FROM alerts WHERE incident_id = ?",
            (incident_id,),
        )
        return [IncidentAlertFacts(**row) for row in rows]

    async def open_of_rules(self, rule_ids: list[str]) -> list[Alert]:
        if not rule_ids:
            return []
        rows = await self.db.fetchall(
            f"SELECT * FROM alerts WHERE status <> 'resolved' AND rule_id IN ({', '.join('?' for _ in rule_ids)})",
            rule_ids,
        )
        return [alert_from_row(r) for r in rows]

    @staticmethod
    async def set_fields(tx: Executor, alert_id: int, fields: dict[str, Any]) -> None:
        assigns = ", ".join(f"{k} = ?" for k in fields)
        await tx.execute(f"UPDATE alerts SET {assigns} WHERE id = ?", (*fields.values(), alert_id))

    @staticmethod
    async def set_fields_of_incident(tx: Executor, incident_id: int, fields: dict[str, Any]) -> None:
        """Set the same ``fields`` on every alert of an incident."""
        assigns = ", ".join(f"{k} = ?" for k in fields)
        await tx.execute(f"UPDATE alerts SET {assigns} WHERE incident_id = ?", (*fields.values(), incident_id))

    async def lock(self, tx: Executor, alert_id: int) -> None:
        """Hold an alert's row until ``tx`` ends, so a concurrent change waits and then sees this one
        (PostgreSQL; SQLite runs one writing transaction at a time anyway)."""
        if self.db.dialect == "postgresql":
            await tx.execute("SELECT id FROM alerts WHERE id = ? FOR UPDATE", (alert_id,))

    @staticmethod
    async def record_action(
        tx: Executor,
        *,
        alert_id: int | None,
        incident_id: int | None,
        verb: str,
        detail: str,
        actor: str,
        actor_name: str,
        via: str,
        at: float,
    ) -> None:
        await tx.execute(
            "INSERT INTO alert_actions (alert_id, incident_id, verb, detail, actor, actor_name, via, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (alert_id, incident_id, verb, detail, actor, actor_name, via, at),
        )

    async def actions(self, *, alert_id: int | None = None, incident_id: int | None = None) -> list[Row]:
        if alert_id is not None:
            return await self.db.fetchall("SELECT * FROM alert_actions WHERE alert_id = ? ORDER BY id", (alert_id,))
        return await self.db.fetchall("SELECT * FROM alert_actions WHERE incident_id = ? ORDER BY id", (incident_id,))

    async def actions_on(self, incident_id: int, alert_ids: list[int], *, limit: int = 500) -> list[Row]:
        """The actions taken on the incident or on any of ``alert_ids``, oldest first."""
        params: list[object] = [incident_id, *alert_ids]
        return await self.db.fetchall(
            "SELECT * FROM alert_actions WHERE incident_id = ? "
            + (f"OR alert_id IN ({', '.join('?' for _ in alert_ids)}) " if alert_ids else "")
            + f"ORDER BY id LIMIT {int(limit)}", params)

    # The engine's read positions, advanced only forward so two engines never move one back.
    async def cursor(self, name: str) -> int:
        row = await self.db.fetchone("SELECT position FROM alert_cursors WHERE name = ?", (name,))
        return int(row["position"]) if row else 0

    @staticmethod
    async def advance_cursor(tx: Executor, name: str, position: int) -> None:
        await tx.execute(
            "UPDATE alert_cursors SET position = ? WHERE name = ? AND position < ?",
            (position, name, position),
        )

    @staticmethod
    async def take_quota(tx: Executor, rule_id: str, channel: str, day: str, limit: int) -> bool:
        """Count one notification against the rule's daily limit; False when the limit is reached."""
        row = await tx.fetchone(
            "SELECT sent FROM alert_notification_counts WHERE rule_id = ? AND channel = ? AND day = ?",
            (rule_id, channel, day),
        )
        sent = int(row["sent"]) if row else 0
        if sent >= limit:
            return False
        if row:
            await tx.execute(
                "UPDATE alert_notification_counts SET sent = sent + 1 WHERE rule_id = ? AND channel = ? AND day = ?",
                (rule_id, channel, day),
            )
        else:
            await tx.execute(
                "INSERT INTO alert_notification_counts (rule_id, channel, day, sent) VALUES (?, ?, ?, 1)",
                (rule_id, channel, day),
            )
        return True
