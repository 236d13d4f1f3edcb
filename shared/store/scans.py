"""The ``scans`` table: one row per URL a scanner was asked to visit, shared by every process
(``shared.verdicts.scans`` decides when to scan and what a result means)."""

from __future__ import annotations

from collections.abc import Awaitable

from shared.store.database import Database, Row
from shared.store.errors import StoreError

__all__ = ["ScanTable"]


class ScanTable:
    """Rows of ``scans``: claimed by the one process that submits a URL, then given its scan id and result."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, url: str) -> Awaitable[Row | None]:
        """The scan row of ``url`` (every column), or None; asked on the click path, so no await of its own."""
        return self._db.fetchone("SELECT * FROM scans WHERE url = ?", (url,))

    async def claim(self, url: str, submitted_at: float | None, now: float) -> bool:
        """Mark ``url`` as being scanned from ``now``: a new row, or the one last submitted at
        ``submitted_at`` started afresh; False if another process got there first."""
        try:
            if submitted_at is None:
                await self._db.execute("INSERT INTO scans (url, status, submitted_at) VALUES (?, 'running', ?)",
                                       (url, now))
                return True
            changed = await self._db.execute(
                "UPDATE scans SET status = 'running', verdict = NULL, scan_id = NULL, result_url = NULL, "
                "reason = '', threat_types = '', submitted_at = ?, finished_at = NULL "
                "WHERE url = ? AND submitted_at = ?", (now, url, submitted_at))
            return bool(changed)
        except StoreError:
            return False  # a concurrent insert won: that process scans it

    async def set_scan_id(self, url: str, scan_id: str) -> None:
        """Note the scanner's id for the running scan of ``url``."""
        await self._db.execute("UPDATE scans SET scan_id = ? WHERE url = ?", (scan_id, url))

    async def finish(self, url: str, status: str, verdict: str | None, reason: str, threat_types: str,
                     result_url: str | None, now: float) -> None:
        """Record how the scan of ``url`` ended (the reason is kept to its first 1000 characters)."""
        await self._db.execute(
            "UPDATE scans SET status = ?, verdict = ?, reason = ?, threat_types = ?, result_url = ?, finished_at = ? "
            "WHERE url = ?",
            (status, verdict, reason[:1000], threat_types, result_url, now, url),
        )
