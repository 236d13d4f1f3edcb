"""The database interface the repositories, migrations and leaders use; each backend implements it whole."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Literal, Protocol

from shared.store.leadership import Leadership

if TYPE_CHECKING:
    from shared.store.changes import ChangeSignal

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

    def change_signal(self) -> ChangeSignal:
        """A new signal telling that another process changed a cached table (``shared.store.changes``)."""
        ...

    def leader(self, name: str, *, ttl: float = 30.0) -> AbstractAsyncContextManager[Leadership]:
        """Try to lead the singleton job ``name`` for a block (``shared.store.leader``): true if this process leads."""
        ...

    async def run_script(self, script: str) -> None:
        """Run several statements in one transaction (a migration)."""
        ...

    def migration_lock(self) -> AbstractAsyncContextManager[None]:
        """Held while migrating, so replicas that start together migrate once and the others wait."""
        ...

    async def close(self) -> None:
        """Release connections; pending work is finished first."""
        ...
