"""The Overview's health lines: the database, the outbox, the bot, and Microsoft Graph as quarantine and
coverage use it (configured or not, and how each one's last call or round ended, as the store records it)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from console.render import when
from safelinks.quarantine import graph_problems
from shared.config import Settings
from shared.coverage import Scope
from shared.coverage.service import JOB as COVERAGE_JOB
from shared.coverage.service import KIND as INSTALL_KIND
from shared.quarantine import State
from shared.quarantine.service import KIND as QUARANTINE_KIND
from shared.store.conversations import SECURITY_CHANNEL, ConversationStore
from shared.store.coverage import CoverageStore
from shared.store.database import Database
from shared.store.health import ping
from shared.store.job_runs import JobRunTable
from shared.store.outbox import Backlog, OutboxTable
from shared.store.quarantine import QuarantineStore

GRAPH = "Microsoft Graph"


@dataclass(frozen=True, slots=True)
class Health:
    """One service's line: whether it is well (None: not in use here), a summary, and a line per part."""

    name: str
    ok: bool | None
    text: str
    parts: tuple[str, ...] = ()


async def service_health(settings: Settings, db: Database, now: datetime) -> list[Health]:
    """Every health line, in the order the Overview shows them; past a database failure, only that one."""
    found: list[Health] = []
    started = time.perf_counter()
    try:
        await ping(db)
        took = (time.perf_counter() - started) * 1000
        found.append(Health("Database", True, f"{db.dialect}, answered in {took:.0f} ms"))
    except Exception as exc:  # the page still shows what it can
        found.append(Health("Database", False, f"{db.dialect}: {exc}"))
        return found
    rows = await OutboxTable(db).backlog()
    found.append(_outbox(rows, now))
    found.append(await _bot(settings, db, rows))
    found.append(await graph_health(settings, db))
    return found


def _outbox(rows: list[Backlog], now: datetime) -> Health:
    pending = sum(r.count for r in rows if r.status == "pending")
    failed = sum(r.count for r in rows if r.status not in ("pending",))
    oldest = min((r.oldest for r in rows if r.status == "pending"), default=None)
    late = oldest is not None and now.timestamp() - oldest > 600
    text = f"{pending} waiting, {failed} given up"
    if oldest is not None:
        text += f", oldest waiting {int((now.timestamp() - oldest) // 60)} min"
    return Health("Outbox", not late and not failed, text)


async def _bot(settings: Settings, db: Database, rows: list[Backlog]) -> Health:
    channel = await ConversationStore(db).setting(SECURITY_CHANNEL)
    teams_failed = sum(r.count for r in rows if r.kind == "teams" and r.status != "pending")
    auth = "authenticated" if settings.bot_authenticated else "local, unauthenticated"
    where = "security channel set" if channel or settings.security_channel else "no security channel yet"
    return Health("Bot", not teams_failed and bool(channel or settings.security_channel),
                  f"{auth}; {where}; {teams_failed} Teams messages given up")


async def graph_health(settings: Settings, db: Database) -> Health:
    """Whether Graph is configured, which features use it, and how each one's last call or round ended."""
    quarantine_on = settings.teams_quarantine != "off"
    coverage_on = bool(Scope.parse(settings.coverage).kinds)
    problems = graph_problems(settings)
    configured = "configured" if not problems else "not configured"
    if not quarantine_on and not coverage_on:
        return Health(GRAPH, None, f"not used: quarantine (SAFELINKS_TEAMS_QUARANTINE) and coverage "
                                   f"(SAFELINKS_COVERAGE) are off; {configured}")
    users = " and ".join(name for name, on in (("quarantine", quarantine_on), ("coverage", coverage_on)) if on)
    parts: list[tuple[bool, str]] = []
    if quarantine_on:
        parts.append(await _quarantine_outcome(db))
    if coverage_on:
        parts.append(await _coverage_outcome(db))
    if problems:
        return Health(GRAPH, False, f"used by {users}, but not configured: {'; '.join(problems)}",
                      tuple(text for _, text in parts))
    return Health(GRAPH, all(ok for ok, _ in parts), f"used by {users}; configured",
                  tuple(text for _, text in parts))


async def _retrying(db: Database, kind: str, what: str) -> tuple[bool, str]:
    waiting = await OutboxTable(db).retrying(kind)
    if waiting is None:
        return True, ""
    one = waiting.count == 1
    return False, (f"; {waiting.count} {what}{'' if one else 's'} failed and {'waits' if one else 'wait'} to be "
                   f"tried again ({waiting.last_error})")


async def _quarantine_outcome(db: Database) -> tuple[bool, str]:
    """(well, text): the last hide or release that ended, and the calls waiting to be retried."""
    last = await QuarantineStore(db).last_settled()
    if last is None:
        ok, text = True, "quarantine: no message hidden or released yet"
    elif last.state is State.FAILED:
        verb = "release" if last.last_action == "release" else "hide"
        ok, text = False, (f"quarantine: the last {verb} failed ({when(last.updated_at)} UTC): "
                           f"{last.state_detail or 'no reason recorded'}")
    else:
        ok, text = True, f"quarantine: the last message was {last.state.value} ({when(last.updated_at)} UTC)"
    waiting_ok, waiting = await _retrying(db, QUARANTINE_KIND, "call")
    return ok and waiting_ok, text + waiting


async def _coverage_outcome(db: Database) -> tuple[bool, str]:
    """(well, text): how the last coverage round ended, and the installs waiting to be retried."""
    run = await JobRunTable(db).get(COVERAGE_JOB)
    rounds = [s.last_round for s in await CoverageStore(db).summary() if s.last_round is not None]
    failed = [r for r in rounds if r.outcome == "failed"]
    ended = max((r.finished_at.timestamp() for r in rounds if r.finished_at is not None), default=None)
    if run is not None and run.outcome == "running":
        ok, text = True, f"coverage: a round is running (since {when(run.started_at)} UTC)"
    elif run is not None and run.outcome == "failed":
        # A round that failed before its first kind (no Graph, no catalog app) is recorded only as the job's run.
        ok, text = False, f"coverage: the last round failed ({when(run.finished_at)} UTC): {run.detail}"
    elif failed:
        why = "; ".join(f"{r.kind.setting}: {r.detail}" for r in failed)
        ok, text = False, f"coverage: the last round failed ({when(ended)} UTC) for {why}"
    elif run is not None or rounds:
        ok, text = True, f"coverage: the last round went through ({when(run.finished_at if run else ended)} UTC)"
    else:
        ok, text = True, "coverage: no round yet"
    waiting_ok, waiting = await _retrying(db, INSTALL_KIND, "install")
    return ok and waiting_ok, text + waiting
