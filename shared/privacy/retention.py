"""Retention: records older than their table's horizon are deleted, by a job that runs once across replicas.

| records | kept for (setting) | age measured from |
| --- | --- | --- |
| clicks | ``click_retention_days`` (30) | the click |
| Teams messages kept as evidence, and looked-up users | ``message_retention_days`` (30) | receipt / look-up |
| incidents, with their alerts, events, entities, actions | ``alert_retention_days`` (180) | its last activity |
| alerts outside any incident | ``alert_retention_days`` | the alert's last activity |
| delivered or failed notifications | ``outbox_retention_days`` (7) | delivery |

An incident goes whole or not at all, so no incident is left with some of its alerts missing; an
incident that is still active (its last alert is recent) keeps its older alerts. Clicks the alert
engine has not read yet are never deleted. Deletes run in batches so a large purge never holds
long locks on a busy table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.config import Settings
from shared.schedule import Job
from shared.store.database import Database, Executor

log = logging.getLogger(__name__)
_BATCH = 5000
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Days each kind of record is kept."""

    clicks: int = 30
    messages: int = 30
    alerts: int = 180
    outbox: int = 7

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(settings.click_retention_days, settings.message_retention_days, settings.alert_retention_days,
                   settings.outbox_retention_days)


async def _batched(db: Database, sql: str, params: tuple[object, ...]) -> int:
    total = 0
    while True:
        n = await db.execute(sql, params)
        total += n
        if n < _BATCH:
            return total


async def _engine_position(db: Database) -> int:
    row = await db.fetchone("SELECT position FROM alert_cursors WHERE name = 'clicks'")
    return int(row["position"]) if row else 0


async def purge(db: Database, policy: RetentionPolicy, now: datetime) -> dict[str, int]:
    """Delete what is past its horizon; return how many records went, by kind."""
    at = now.timestamp()
    done: dict[str, int] = {}
    done["clicks"] = await _batched(
        db, f"DELETE FROM clicks WHERE id IN (SELECT id FROM clicks WHERE timestamp < ? AND id <= ? "
            f"ORDER BY id LIMIT {_BATCH})", (at - policy.clicks * DAY, await _engine_position(db)))
    done["messages"] = await _batched(
        db, "DELETE FROM teams_messages WHERE (conversation_id, message_id) IN (SELECT conversation_id, message_id "
            f"FROM teams_messages WHERE received_at < ? LIMIT {_BATCH})", (at - policy.messages * DAY,))
    done["users"] = await _batched(
        db, f"DELETE FROM teams_users WHERE user_id IN (SELECT user_id FROM teams_users WHERE looked_up_at < ? "
            f"LIMIT {_BATCH})", (at - policy.messages * DAY,))
    # Quarantine records go with the messages, except those still hidden (they are needed to release them).
    done["quarantine"] = await _batched(
        db, f"DELETE FROM quarantined_messages WHERE id IN (SELECT id FROM quarantined_messages WHERE state IN "
            f"('released', 'failed') AND updated_at < ? LIMIT {_BATCH})", (at - policy.messages * DAY,))
    done["reports"] = await _batched(
        db, f"DELETE FROM message_reports WHERE id IN (SELECT id FROM message_reports WHERE reported_at < ? "
            f"LIMIT {_BATCH})", (at - policy.messages * DAY,))
    done["incidents"], done["alerts"] = await _purge_incidents(db, at - policy.alerts * DAY)
    done["outbox"] = await _batched(
        db, f"DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE status IN ('done', 'failed') "
            f"AND done_at < ? LIMIT {_BATCH})", (at - policy.outbox * DAY,))
    return done


async def _purge_incidents(db: Database, horizon: float) -> tuple[int, int]:
    incidents = alerts = 0
    while True:
        rows = await db.fetchall(f"SELECT id FROM incidents WHERE last_activity < ? ORDER BY id LIMIT {_BATCH // 10}",
                                 (horizon,))
        if not rows:
            break
        async with db.transaction() as tx:
            for row in rows:
                alerts += await _drop_alerts(tx, "incident_id = ?", (int(row["id"]),))
                await tx.execute("DELETE FROM incident_entities WHERE incident_id = ?", (int(row["id"]),))
                await tx.execute("DELETE FROM alert_actions WHERE incident_id = ?", (int(row["id"]),))
                incidents += await tx.execute("DELETE FROM incidents WHERE id = ?", (int(row["id"]),))
    async with db.transaction() as tx:
        alerts += await _drop_alerts(tx, "incident_id IS NULL AND last_activity < ?", (horizon,))
    return incidents, alerts


async def _drop_alerts(tx: Executor, where: str, params: tuple[object, ...]) -> int:
    inner = f"SELECT id FROM alerts WHERE {where}"
    await tx.execute(f"DELETE FROM alert_events WHERE alert_id IN ({inner})", params)
    await tx.execute(f"DELETE FROM alert_actions WHERE alert_id IN ({inner})", params)
    return await tx.execute(f"DELETE FROM alerts WHERE {where}", params)


def retention_job(db: Database, policy: RetentionPolicy, clock: Callable[[], datetime], *,
                  every: timedelta = timedelta(hours=6)) -> Job:
    """The scheduled purge (``shared.schedule``): once per ``every`` across all workers."""

    async def run() -> str:
        done = await purge(db, policy, clock())
        summary = ", ".join(f"{n} {kind}" for kind, n in done.items() if n) or "nothing"
        log.info("retention purge: %s", summary)
        return f"purged {summary}"

    return Job("retention", every.total_seconds(), run, retry_after=600.0)
