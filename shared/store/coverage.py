"""The coverage tables: each target's state (``coverage_targets``) and each kind's last round (``coverage_rounds``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.coverage.model import Kind, KindSummary, Round, State, Target
from shared.store.database import Database, Executor, Row

__all__ = ["CoverageStore", "round_from_row", "target_from_row"]


def _dt(value: Any) -> datetime | None:
    return datetime.fromtimestamp(float(value), UTC) if value is not None else None


def target_from_row(r: Row) -> Target:
    """The target a ``coverage_targets`` row holds."""
    seen, updated = _dt(r["seen_at"]), _dt(r["updated_at"])
    assert seen is not None and updated is not None
    return Target(Kind(r["kind"]), r["target_id"], r["name"], State(r["state"]), r["detail"], int(r["generation"]),
                  seen, updated, _dt(r["installed_at"]))


def round_from_row(r: Row) -> Round:
    """The round a ``coverage_rounds`` row holds."""
    started = _dt(r["started_at"])
    assert started is not None
    return Round(Kind(r["kind"]), started, _dt(r["finished_at"]), r["outcome"], r["detail"], int(r["found"]))


class CoverageStore:
    """Coverage targets and rounds, by kind. ``observe`` takes the caller's transaction (with its outbox item)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, kind: Kind, target_id: str, tx: Executor | None = None) -> Target | None:
        """The target ``target_id`` of ``kind``, or None."""
        row = await (tx or self.db).fetchone(
            "SELECT * FROM coverage_targets WHERE kind = ? AND target_id = ?", (kind.value, target_id))
        return target_from_row(row) if row else None

    async def observe(self, tx: Executor, kind: Kind, target_id: str, name: str, *, installed: bool,
                      excluded: bool, now: float) -> int | None:
        """Record what a round found; returns the generation of a new install request, or None when none is due.

        An install is asked for a target that lacks the app and has no request on its way: new, failed last
        time (the cause may be fixed now), uninstalled since, or no longer excluded.
        """
        row = await tx.fetchone("SELECT state, generation, detail FROM coverage_targets WHERE kind = ? AND "
                                "target_id = ?", (kind.value, target_id))
        if excluded:
            state, detail, request = State.EXCLUDED, "excluded by SAFELINKS_COVERAGE_EXCLUDE", False
        elif installed:
            kept = row["detail"] if row is not None and row["state"] == State.COVERED.value else None
            state, detail, request = State.COVERED, kept or "already installed", False
        elif row is not None and row["state"] == State.INSTALLING.value:
            state, detail, request = State.INSTALLING, row["detail"], False
        else:
            state, detail, request = State.INSTALLING, None, True
        bump = 1 if request else 0
        found = await tx.fetchone(
            "INSERT INTO coverage_targets (kind, target_id, name, state, detail, generation, seen_at, updated_at, "
            "installed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, target_id) DO UPDATE SET "
            "name = excluded.name, state = excluded.state, detail = excluded.detail, "
            "generation = coverage_targets.generation + ?, seen_at = excluded.seen_at, "
            "updated_at = CASE WHEN coverage_targets.state = excluded.state THEN coverage_targets.updated_at "
            "ELSE excluded.updated_at END, "
            "installed_at = COALESCE(coverage_targets.installed_at, excluded.installed_at) RETURNING generation",
            (kind.value, target_id, name[:300], state.value, detail, bump, now, now,
             now if state is State.COVERED else None, bump),
        )
        assert found is not None
        return int(found["generation"]) if request else None

    async def settle(self, kind: Kind, target_id: str, generation: int, *, state: State, detail: str | None,
                     now: float) -> bool:
        """Record Graph's answer to install request ``generation``; False when a later request overtook it."""
        installed = ", installed_at = ?" if state is State.COVERED else ""
        params: tuple[Any, ...] = (state.value, detail, now, *((now,) if installed else ()), kind.value, target_id,
                                   generation)
        changed = await self.db.execute(
            f"UPDATE coverage_targets SET state = ?, detail = ?, updated_at = ?{installed} "
            "WHERE kind = ? AND target_id = ? AND generation = ?", params)
        return changed > 0

    async def generation(self, kind: Kind, target_id: str) -> int | None:
        """The target's current install request generation, or None when it is not recorded."""
        row = await self.db.fetchone("SELECT generation FROM coverage_targets WHERE kind = ? AND target_id = ?",
                                     (kind.value, target_id))
        return int(row["generation"]) if row else None

    async def start_round(self, kind: Kind, now: float) -> None:
        """Mark a round of ``kind`` running since ``now`` (replacing the last round's record)."""
        await self.db.execute(
            "INSERT INTO coverage_rounds (kind, started_at, outcome) VALUES (?, ?, 'running') ON CONFLICT (kind) "
            "DO UPDATE SET started_at = excluded.started_at, finished_at = NULL, outcome = 'running', detail = '', "
            "found = 0", (kind.value, now))

    async def finish_round(self, kind: Kind, started: float, now: float, *, found: int, failure: str | None) -> int:
        """Close the round; after a complete one, forget the targets it no longer saw. Returns how many went."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE coverage_rounds SET finished_at = ?, outcome = ?, detail = ?, found = ? WHERE kind = ?",
                (now, "failed" if failure else "ok", (failure or "")[:1000], found, kind.value))
            if failure:
                return 0
            return await tx.execute("DELETE FROM coverage_targets WHERE kind = ? AND seen_at < ?",
                                    (kind.value, started))

    async def summary(self) -> list[KindSummary]:
        """Every kind that has targets or a round, in the order teams, chats, users."""
        counts: dict[Kind, dict[State, int]] = {}
        for r in await self.db.fetchall(
                "SELECT kind, state, COUNT(*) AS n FROM coverage_targets GROUP BY kind, state"):
            counts.setdefault(Kind(r["kind"]), {})[State(r["state"])] = int(r["n"])
        rounds = {Kind(r["kind"]): round_from_row(r) for r in await self.db.fetchall("SELECT * FROM coverage_rounds")}
        return [KindSummary(k, counts.get(k, {}), rounds.get(k)) for k in Kind if k in counts or k in rounds]

    async def targets(self, *, state: State | None = None, kind: Kind | None = None,
                      limit: int = 1000) -> list[Target]:
        """Up to ``limit`` targets (of one state and kind, if given), by kind and name."""
        where, params = [], []
        if state is not None:
            where.append("state = ?")
            params.append(state.value)
        if kind is not None:
            where.append("kind = ?")
            params.append(kind.value)
        sql = "SELECT * FROM coverage_targets" + (" WHERE " + " AND ".join(where) if where else "")
        rows = await self.db.fetchall(sql + f" ORDER BY kind, name, target_id LIMIT {int(limit)}", tuple(params))
        return [target_from_row(r) for r in rows]
