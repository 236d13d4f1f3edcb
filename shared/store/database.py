"""The database interface the repositories use, and the factory that picks a backend from a URL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, Protocol

Row = dict[str, Any]
Params = Sequence[Any]
Dialect = Literal["sqlite", "postgresql"]


class Executor(Protocol):
    """What both a database and an open transaction can do."""

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement for each parameter row."""
        ...

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Run a query; return every row as a dict."""
        ...

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Run a query; return its first row, or None."""
        ...


class Database(Executor, Protocol):
    """A connection pool (or its embedded equivalent). Statements outside a transaction autocommit;
    ``executemany`` outside a transaction commits all its rows together or none."""

    dialect: Dialect

    def transaction(self) -> AbstractAsyncContextManager[Executor]:
        """All statements inside commit together, or none do."""
        ...

    def iterate(self, sql: str, params: Params = (), *, batch: int = 1000) -> AsyncIterator[Row]:
        """Stream a large result without holding it all in memory."""
        ...

    def leader(self, name: str, *, ttl: float = 30.0) -> AbstractAsyncContextManager[Any]:
        """Try to lead the singleton job ``name`` for a block (``shared.store.leader``): true if this process leads."""
        ...

    async def close(self) -> None:
        """Release connections; pending work is finished first."""
        ...


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
