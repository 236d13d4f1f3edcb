"""The ``message_reports`` table: Teams messages users reported with "Report to security"."""

from __future__ import annotations

import json
from typing import Any

from shared.store.database import Database, Executor
from shared.store.purge import BATCH, delete_in_batches

__all__ = ["MessageReportStore", "purge_reports"]


class MessageReportStore:
    """Reports as stored, one per reporter and message. Writes that belong with others take the caller's
    transaction (``tx``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    async def record(tx: Executor, *, conversation_id: str, message_id: str, reporter_id: str,
                     reporter_aad_object_id: str | None, reporter_name: str, note: str,
                     verdicts: list[dict[str, Any]], reported_at: float) -> tuple[int, bool]:
        """Keep a report; (its id, True) when this reporter had already reported this message."""
        # ON CONFLICT keeps the caller's transaction alive on a repeat (PostgreSQL aborts it on an error).
        row = await tx.fetchone(
            "INSERT INTO message_reports (conversation_id, message_id, reporter_id, reporter_aad_object_id, "
            "reporter_name, note, verdicts, reported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (conversation_id, message_id, reporter_id) DO NOTHING RETURNING id",
            (conversation_id, message_id, reporter_id, reporter_aad_object_id, reporter_name, note,
             json.dumps(verdicts), reported_at),
        )
        if row is not None:
            return int(row["id"]), False
        found = await tx.fetchone(
            "SELECT id FROM message_reports WHERE conversation_id = ? AND message_id = ? AND reporter_id = ?",
            (conversation_id, message_id, reporter_id))
        assert found is not None
        return int(found["id"]), True

    @staticmethod
    async def link_alert(tx: Executor, report_id: int, alert_key: str) -> None:
        """Point a report at the alert stored under ``alert_key`` (none when there is no such alert)."""
        await tx.execute(
            "UPDATE message_reports SET alert_id = (SELECT id FROM alerts WHERE alert_key = ?) WHERE id = ?",
            (alert_key, report_id))

    async def alert_of(self, report_id: int) -> int | None:
        """The id of the alert a report raised, or None."""
        row = await self.db.fetchone("SELECT alert_id FROM message_reports WHERE id = ?", (report_id,))
        return int(row["alert_id"]) if row and row["alert_id"] is not None else None


async def purge_reports(db: Executor, before: float) -> int:
    """Delete message reports made before ``before``."""
    return await delete_in_batches(
        db, f"DELETE FROM message_reports WHERE id IN (SELECT id FROM message_reports WHERE reported_at < ? "
            f"LIMIT {BATCH})", (before,))
