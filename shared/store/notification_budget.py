"""The ``notification_budget`` table: per recipient and window, the notifications sent and held."""

from __future__ import annotations

from shared.store.database import Executor

__all__ = ["NotificationBudgetStore"]


class NotificationBudgetStore:
    """Rows of ``notification_budget``; every statement runs in the caller's transaction (``tx``)."""

    @staticmethod
    async def sent(tx: Executor, recipient: str, window_start: float) -> int | None:
        """How many notifications ``recipient`` got in the window; None when the window has no row yet."""
        row = await tx.fetchone(
            "SELECT sent FROM notification_budget WHERE recipient = ? AND window_start = ?", (recipient, window_start)
        )
        return int(row["sent"]) if row is not None else None

    @staticmethod
    async def open_window(tx: Executor, recipient: str, window_start: float, *, forget_before: float) -> None:
        """Start counting a new window for ``recipient``, forgetting its windows older than ``forget_before``."""
        await tx.execute(
            "DELETE FROM notification_budget WHERE recipient = ? AND window_start < ?",
            (recipient, forget_before),
        )
        await tx.execute(
            "INSERT INTO notification_budget (recipient, window_start, sent, held) VALUES (?, ?, 0, 0)",
            (recipient, window_start),
        )

    @staticmethod
    async def count_sent(tx: Executor, recipient: str, window_start: float) -> None:
        """Count one notification sent to ``recipient`` in the window."""
        await tx.execute(
            "UPDATE notification_budget SET sent = sent + 1 WHERE recipient = ? AND window_start = ?",
            (recipient, window_start),
        )

    @staticmethod
    async def count_held(tx: Executor, recipient: str, window_start: float) -> None:
        """Count one notification held for ``recipient``'s summary of the window."""
        await tx.execute(
            "UPDATE notification_budget SET held = held + 1 WHERE recipient = ? AND window_start = ?",
            (recipient, window_start),
        )
