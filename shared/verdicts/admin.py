"""Verdicts set by an administrator (``safelinks verdict set``): the highest-precedence source."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.events import VerdictChanged
from shared.store import audit, counters
from shared.store.database import Database, Row
from shared.urls import expression_of
from shared.verdicts.model import Verdict, VerdictResult

SOURCE = "admin"


@dataclass(frozen=True, slots=True)
class AdminVerdict:
    expression: str
    result: VerdictResult
    set_by: str | None


def _result(row: Row) -> VerdictResult:
    reason = row["reason"] or f"set by {row['set_by'] or 'an administrator'}"
    return VerdictResult(
        verdict=Verdict(row["verdict"]),
        source=SOURCE,
        threat_types=tuple(t for t in row["threat_types"].split(",") if t),
        detection_method=row["detection_method"] or "AdminVerdict",
        reasons=(f"admin verdict on {row['expression']}: {reason}",),
        at=datetime.fromtimestamp(row["set_at"], UTC),
        expression=row["expression"],
    )


class AdminVerdicts:
    """Admin verdicts keyed by lookup expression, mirrored in memory for the click path."""

    name = SOURCE
    tier = 0
    in_memory = True

    def __init__(self, db: Database) -> None:
        self._db = db
        self._by_expr: dict[str, VerdictResult] = {}
        self._version = -1

    @property
    def enabled(self) -> bool:
        return True

    async def load(self) -> bool:
        """Reload when another writer changed the table; return whether anything was reloaded."""
        version = await counters.read(self._db, "verdicts")
        if version == self._version:
            return False
        rows = await self._db.fetchall("SELECT * FROM verdicts")
        self._by_expr = {r["expression"]: _result(r) for r in rows}
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
            old_row = await tx.fetchone("SELECT verdict FROM verdicts WHERE expression = ?", (expr,))
            old = Verdict(old_row["verdict"]) if old_row else Verdict.UNKNOWN
            if verdict == Verdict.UNKNOWN:
                await tx.execute("DELETE FROM verdicts WHERE expression = ?", (expr,))
            else:
                await tx.execute(
                    "INSERT INTO verdicts (expression, verdict, threat_types, detection_method, source, "
                    "reason, set_by, set_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (expression) DO UPDATE SET verdict = excluded.verdict, "
                    "threat_types = excluded.threat_types, reason = excluded.reason, "
                    "set_by = excluded.set_by, set_at = excluded.set_at",
                    (expr, verdict.value, ",".join(threat_types), "AdminVerdict", SOURCE, reason, set_by, at),
                )
            change = None
            if old != verdict:
                await tx.execute(
                    "INSERT INTO verdict_changes (expression, old_verdict, new_verdict, threat_types, source, "
                    "reason, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (expr, old.value, verdict.value, ",".join(threat_types), SOURCE, reason, at),
                )
                row = await tx.fetchone(
                    "SELECT MAX(id) AS id FROM verdict_changes WHERE expression = ?", (expr,)
                )
                change = VerdictChanged(
                    change_id=int(row["id"]) if row else 0,
                    expression=expr,
                    old_verdict=old.value,
                    new_verdict=verdict.value,
                    threat_types=threat_types,
                    source=SOURCE,
                    reason=reason,
                    changed_at=datetime.fromtimestamp(at, UTC),
                )
            await counters.bump(tx, "verdicts")
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
        from shared.store.alerts import with_contains

        where, params = with_contains("", [], {"expression": contains})
        rows = await self._db.fetchall(
            f"SELECT * FROM verdicts{where} ORDER BY set_at DESC, expression LIMIT {int(top) + 1} OFFSET {int(skip)}",
            params)
        return [AdminVerdict(r["expression"], _result(r), r["set_by"]) for r in rows[:top]], len(rows) > top

    async def list(self) -> list[AdminVerdict]:
        rows = await self._db.fetchall("SELECT * FROM verdicts ORDER BY set_at DESC")
        return [AdminVerdict(r["expression"], _result(r), r["set_by"]) for r in rows]
