"""The Tenant Allow/Block List, stored, and mirrored in memory for the click path."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from shared.store import audit, counters
from shared.store.alerts import with_contains
from shared.store.database import Database, Row
from shared.store.errors import DuplicateKey
from shared.urllists.tenant_list import TablAction, TablError, default_expiry, validate_expiry
from shared.urllists.tenant_list_entries import TablEntry, TablIndex
from shared.urllists.tenant_list_syntax import parse_entry
from shared.urls import WebURL


def _dt(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def _entry(r: Row) -> TablEntry:
    return TablEntry(
        value=r["value"],
        action=TablAction(r["action"]),
        created_at=datetime.fromtimestamp(r["created_at"], UTC),
        expires_at=_dt(r["expires_at"]),
        last_used_at=_dt(r["last_used_at"]),
        notes=r["notes"] or "",
        id=r["id"],
    )


class TenantList:
    """Tenant Allow/Block List entries for URLs."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._index = TablIndex(())
        self._version = -1
        self._used: dict[int, float] = {}

    @property
    def index(self) -> TablIndex:
        return self._index

    async def load(self) -> bool:
        """Reload when any writer changed the list; return whether anything was reloaded."""
        version = await counters.read(self._db, "tabl")
        if version == self._version:
            return False
        rows = await self._db.fetchall("SELECT * FROM tabl_entries")
        entries = []
        for r in rows:
            try:
                entries.append(_entry(r))
            except TablError:
                continue  # written by a newer, laxer version: skip rather than refuse to start
        self._index = TablIndex(entries)
        self._version = version
        return True

    def match(self, url: str | WebURL, now: datetime | None = None) -> TablEntry | None:
        if not len(self._index):
            return None
        try:
            hit = self._index.match(url, now)
        except TablError:
            return None
        if hit is not None and hit.id is not None:
            self._used[hit.id] = time.time()
        return hit

    async def flush_last_used(self) -> None:
        """Write the 'last used' dates gathered by clicks (allow entries expire 45 days after it)."""
        used, self._used = self._used, {}
        if used:
            await self._db.executemany(
                "UPDATE tabl_entries SET last_used_at = ? WHERE id = ?",
                [(ts, entry_id) for entry_id, ts in used.items()],
            )

    async def add(
        self,
        value: str,
        action: TablAction,
        *,
        expires_at: datetime | None = None,
        no_expiration: bool = False,
        notes: str = "",
        created_by: str | None = None,
        now: datetime | None = None,
        actor: audit.Who | None = None,
    ) -> TablEntry:
        """Validate and store an entry (TablError with the reason when Defender would refuse it);
        with ``actor``, the audit log records the change in the same transaction."""
        when = now or datetime.now(UTC)
        pattern = parse_entry(value, action)
        if no_expiration:
            expiry = None
        else:
            expiry = expires_at or default_expiry(action, when)
            validate_expiry(action, expiry, when)
        async with self._db.transaction() as tx:
            try:
                await tx.execute(
                    "INSERT INTO tabl_entries (value, action, notes, created_at, created_by, expires_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (pattern.value, action.value, notes, when.timestamp(), created_by,
                     expiry.timestamp() if expiry else None),
                )
            except DuplicateKey:
                raise TablError(f"{pattern.value} is already on the {action.value} list") from None
            row = await tx.fetchone(
                "SELECT * FROM tabl_entries WHERE value = ? AND action = ?", (pattern.value, action.value)
            )
            await counters.bump(tx, "tabl")
            if actor is not None:
                expires = f", expires {expiry:%Y-%m-%d %H:%M} UTC" if expiry else ", no expiry"
                await audit.record(tx, actor, f"tabl.{action.value}", pattern.value,
                                   f"{notes}{expires}".lstrip(", "), at=when.timestamp())
        await self.load()
        assert row is not None
        return _entry(row)

    async def remove(self, value: str, action: TablAction, *, actor: audit.Who | None = None) -> bool:
        pattern = parse_entry(value, action)
        async with self._db.transaction() as tx:
            n = await tx.execute(
                "DELETE FROM tabl_entries WHERE value = ? AND action = ?", (pattern.value, action.value)
            )
            if n:
                await counters.bump(tx, "tabl")
                if actor is not None:
                    await audit.record(tx, actor, f"tabl.{action.value}.remove", pattern.value, at=time.time())
        await self.load()
        return bool(n)

    async def page(self, *, action: TablAction | None = None, contains: str | None = None, top: int = 50,
                   skip: int = 0) -> tuple[list[tuple[TablEntry, str | None]], bool]:
        """A page of entries (each with who created it), newest first, and whether more follow."""
        where, params = ("", []) if action is None else (" WHERE action = ?", [action.value])
        where, params = with_contains(where, params, {"value": contains})
        rows = await self._db.fetchall(
            f"SELECT * FROM tabl_entries{where} ORDER BY created_at DESC, id DESC "
            f"LIMIT {int(top) + 1} OFFSET {int(skip)}", params)
        found = []
        for r in rows[:top]:
            try:
                found.append((_entry(r), r["created_by"]))
            except TablError:
                continue
        return found, len(rows) > top

    async def list(self, action: TablAction | None = None) -> list[TablEntry]:
        if action is None:
            rows = await self._db.fetchall("SELECT * FROM tabl_entries ORDER BY action, value")
        else:
            rows = await self._db.fetchall(
                "SELECT * FROM tabl_entries WHERE action = ? ORDER BY value", (action.value,)
            )
        return [_entry(r) for r in rows]
