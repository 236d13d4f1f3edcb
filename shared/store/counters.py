"""Change counters: a cached table's version, bumped in the writing transaction, polled by readers.

Several replicas share one database; each keeps lookups in memory and reloads them when the
counter moves, which the store's change signal (``shared.store.changes``) tells on the next click.
"""

from __future__ import annotations

from shared.store.changes import CHANNEL
from shared.store.database import Executor


async def bump(tx: Executor, name: str) -> None:
    changed = await tx.execute("UPDATE change_counters SET version = version + 1 WHERE name = ?", (name,))
    if not changed:
        await tx.execute("INSERT INTO change_counters (name, version) VALUES (?, 1)", (name,))
    # PostgreSQL tells its listeners at commit; SQLite readers see data_version move by themselves.
    notify = getattr(tx, "notify", None)
    if notify is not None:
        await notify(CHANNEL, name)


async def read(db: Executor, name: str) -> int:
    row = await db.fetchone("SELECT version FROM change_counters WHERE name = ?", (name,))
    return int(row["version"]) if row else 0
