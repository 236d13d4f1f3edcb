"""The store: one async database interface over SQLite (embedded) and PostgreSQL, and its repositories.

SQL is written once with ``?`` placeholders; each backend adapts it. Schema changes are numbered
migrations in ``migrations/`` applied at start. ``open_database`` is the one place that knows the
backends; they are imported when chosen (the PostgreSQL driver is not loaded for SQLite).
"""

from __future__ import annotations

from shared.store.database import Database, Row
from shared.store.errors import DuplicateKey, StoreError, StoreUnavailable

__all__ = ["Database", "DuplicateKey", "Row", "StoreError", "StoreUnavailable", "open_database"]


async def open_database(url: str, *, synchronous: str = "NORMAL", apply_migrations: bool = True) -> Database:
    """Open the database named by ``url`` (``sqlite:///path`` or ``postgresql://…``) and migrate it
    (unless ``apply_migrations`` is false: ``safelinks migrate --dry-run`` only looks)."""
    from shared.store.migrations import migrate

    db: Database
    if url.startswith("sqlite:"):
        from shared.store.sqlite import SQLiteDatabase

        db = await SQLiteDatabase.open(url.removeprefix("sqlite:///").removeprefix("sqlite:"), synchronous)
    elif url.startswith(("postgresql://", "postgres://")):
        from shared.store.postgres import PostgresDatabase

        db = await PostgresDatabase.open(url)
    else:
        raise ValueError(f"unsupported database URL: {url.split(':', 1)[0]}")
    if not apply_migrations:
        return db
    try:
        await migrate(db)
    except BaseException:
        await db.close()
        raise
    return db
