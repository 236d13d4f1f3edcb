"""Retention: records older than their table's horizon are deleted, by a job that runs once across replicas.

| records | kept for (setting) | age measured from |
| --- | --- | --- |
| clicks | ``click_retention_days`` (30) | the click |
| Teams messages kept as evidence, and looked-up users | ``message_retention_days`` (30) | receipt / look-up |
| incidents, with their alerts, events, entities, actions | ``alert_retention_days`` (180) | its last activity |
| alerts outside any incident | ``alert_retention_days`` | the alert's last activity |
| delivered or failed notifications | ``outbox_retention_days`` (7) | delivery |
| the audit log (who changed what) | ``audit_retention_days`` (365) | the change |

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
from shared.store.alerts import AlertStore
from shared.store.audit import purge_audit
from shared.store.clicks import purge_clicks
from shared.store.conversations import purge_users
from shared.store.database import Database
from shared.store.incidents import purge_incidents
from shared.store.message_reports import purge_reports
from shared.store.messages import purge_messages
from shared.store.outbox import OutboxTable
from shared.store.quarantine import purge_settled

log = logging.getLogger(__name__)
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Days each kind of record is kept."""

    clicks: int = 30
    messages: int = 30
    alerts: int = 180
    outbox: int = 7
    audit: int = 365

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(settings.click_retention_days, settings.message_retention_days, settings.alert_retention_days,
                   settings.outbox_retention_days, settings.audit_retention_days)


async def purge(db: Database, policy: RetentionPolicy, now: datetime) -> dict[str, int]:
    """Delete what is past its horizon; return how many records went, by kind."""
    at = now.timestamp()
    messages = at - policy.messages * DAY
    done: dict[str, int] = {}
    read = await AlertStore(db).cursor("clicks")  # clicks the alert engine has not read yet stay
    done["clicks"] = await purge_clicks(db, at - policy.clicks * DAY, read)
    done["messages"] = await purge_messages(db, messages)
    done["users"] = await purge_users(db, messages)
    # Quarantine records go with the messages, except those still hidden (they are needed to release them).
    done["quarantine"] = await purge_settled(db, messages)
    done["reports"] = await purge_reports(db, messages)
    done["incidents"], done["alerts"] = await purge_incidents(db, at - policy.alerts * DAY)
    done["outbox"] = await OutboxTable(db).purge_finished(at - policy.outbox * DAY)
    done["audit"] = await purge_audit(db, at - policy.audit * DAY)
    return done


def retention_job(db: Database, policy: RetentionPolicy, clock: Callable[[], datetime], *,
                  every: timedelta = timedelta(hours=6)) -> Job:
    """The scheduled purge (``shared.schedule``): once per ``every`` across all workers."""

    async def run() -> str:
        done = await purge(db, policy, clock())
        summary = ", ".join(f"{n} {kind}" for kind, n in done.items() if n) or "nothing"
        log.info("retention purge: %s", summary)
        return f"purged {summary}"

    return Job("retention", every.total_seconds(), run, retry_after=600.0)
