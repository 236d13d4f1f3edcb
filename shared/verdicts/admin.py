"""Verdicts set by an administrator (``safelinks verdict set``): the highest-precedence source."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.events import VerdictChanged
from shared.store import audit
from shared.store.database import Database
from shared.store.verdict_changes import VerdictChangeTable
from shared.store.verdicts import StoredVerdict, VerdictTable
from shared.urls import expression_of
from shared.verdicts.model import Verdict, VerdictResult

SOURCE = "admin"


@dataclass(frozen=True, slots=True)
class AdminVerdict:
    expression: str
    result: VerdictResult
    set_by: str | None


def _result(stored: StoredVerdict) -> VerdictResult:
    reason = stored.reason or f"set by {stored.set_by or 'an administrator'}"
    return VerdictResult(
        verdict=Verdict(stored.verdict),
        source=SOURCE,
        threat_types=tuple(t for t in stored.threat_types.split(",") if t),
        detection_method=stored.detection_method or "AdminVerdict",
        reasons=(f"admin verdict on {stored.expression}: {reason}",),
        at=datetime.fromtimestamp(stored.set_at, UTC),
        expression=stored.expression,
    )


def _listed(stored: StoredVerdict) -> AdminVerdict:
    return AdminVerdict(stored.expression, _result(stored), stored.set_by)


class AdminVerdicts:
    """Admin verdicts keyed by lookup expression, mirrored in memory for the click path."""

    name = SOURCE
    tier = 0
    in_memory = True

    def __init__(self, db: Database) -> None:
        self._db = db
        self._table = VerdictTable(db)
        self._by_expr: dict[str, VerdictResult] = {}
        self._version = -1

    @property
    def enabled(self) -> bool:
        return True

    async def load(self) -> bool:
        """Reload when another writer changed the table; return whether anything was reloaded."""
        version = await self._table.version()
        if version == self._version:
            return False
        self._by_expr = {v.expression: _result(v) for v in await self._table.all()}
        self._version = version
        return True

    async def update(self) -> None:
        await self.load()

    async def check(self, url: str, expressions: list[str]) -> VerdictResult | None:
        for expr in expressions:  # most specific first: an exact URL verdict beats its host's
            hit = self._by_expr.get(expr)
            if hit is not None:
                return hit
        return None

    def get(self, expression: str) -> VerdictResult | None:
        return self._by_expr.get(expression)

    async def set(
        self,
        target: str,
        verdict: Verdict,
        *,
        threat_types: tuple[str, ...] = (),
        reason: str = "",
        set_by: str | None = None,
        now: float | None = None,
        actor: audit.Who | None = None,
    ) -> VerdictChanged | None:
        """Record a verdict for a URL, host or path prefix; return the change it makes, if any. With
        ``actor``, the audit log records it in the same transaction."""
        expr = expression_of(target)
        at = time.time() if now is None else now
        async with self._db.transaction() as tx:
            stored = await VerdictTable.verdict_of(tx, expr)
            old = Verdict(stored) if stored is not None else Verdict.UNKNOWN
            if verdict == Verdict.UNKNOWN:
                await VerdictTable.delete(tx, expr)
            else:
                await VerdictTable.put(tx, expr, verdict.value, ",".join(threat_types), "AdminVerdict", SOURCE,
                                       reason, set_by, at)
            change = None
            if old != verdict:
                change_id = await VerdictChangeTable.add(tx, expr, old.value, verdict.value, ",".join(threat_types),
                                                         SOURCE, reason, at)
                change = VerdictChanged(
                    change_id=change_id,
                    expression=expr,
                    old_verdict=old.value,
                    new_verdict=verdict.value,
                    threat_types=threat_types,
                    source=SOURCE,
                    reason=reason,
                    changed_at=datetime.fromtimestamp(at, UTC),
                )
            await VerdictTable.changed(tx)
            if actor is not None:
                action = "verdict.clear" if verdict == Verdict.UNKNOWN else f"verdict.{verdict.value}"
                detail = "; ".join(p for p in (",".join(threat_types), reason) if p)
                await audit.record(tx, actor, action, expr, detail, at=at)
        await self.load()
        return change

    async def page(self, *, contains: str | None = None, top: int = 50,
                   skip: int = 0) -> tuple[list[AdminVerdict], bool]:
        """A page of admin verdicts, newest first (optionally whose expression contains a text), and
        whether more follow."""
        found, more = await self._table.page(contains=contains, top=top, skip=skip)
        return [_listed(v) for v in found], more

    async def list(self) -> list[AdminVerdict]:
        """Every admin verdict, newest first."""
        return [_listed(v) for v in await self._table.list()]
