"""The shared backend: PostgreSQL through an asyncpg pool, for several replicas on one database.

The repositories write SQL once with ``?`` placeholders; this module turns them into ``$1..$n``
(once per statement text, then cached) and returns rows as dicts, like the SQLite backend.
asyncpg's own errors never leave this module: a unique violation becomes ``DuplicateKey``, a
connection that is refused, lost, shut down by an administrator or turned away for lack of slots
becomes ``StoreUnavailable``. The pool replaces broken connections on the next acquire, so once
the server is back every caller recovers without a restart.

Extra query parameters of the URL tune the pool and are not sent to the server:
``pool_min_size`` (default 1), ``pool_max_size`` (default 10), ``connect_timeout`` seconds (5) and
``command_timeout`` seconds (60). Any other query parameter (``search_path=…``,
``application_name=…``) is a server setting, as asyncpg defines.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, suppress
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from shared.store.changes import CHANNEL, ChangeSignal, NotifySignal
from shared.store.database import Dialect, Params, Row
from shared.store.errors import DuplicateKey, StoreError, StoreUnavailable
from shared.store.leadership import Leadership, check_request
from shared.store.postgres_sql import (
    APPEND_LOCK_SQL,
    CHANNEL_SQL,
    LOCK_KEY_SQL,
    NOTIFY_SQL,
    Statements,
    affected,
    is_if_not_exists,
    is_select,
)
from shared.tasks import stop_tasks

T = TypeVar("T")
log = logging.getLogger(__name__)
_POOL_OPTIONS = {"pool_min_size": int, "pool_max_size": int, "connect_timeout": float, "command_timeout": float}
_TRANSIENT = (
    asyncpg.PostgresConnectionError,  # 08*: refused, lost, rejected
    asyncpg.exceptions.OperatorInterventionError,  # 57*: admin/crash shutdown, starting up, cancelled
    asyncpg.exceptions.InsufficientResourcesError,  # 53*: too many connections, disk full
    asyncpg.exceptions.TransactionRollbackError,  # 40*: serialization failure, deadlock: try again
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # a standby after a fail-over
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.InternalClientError,  # the protocol caught mid-state by a connection the server dropped
    OSError,
    TimeoutError,
)
# Everything the driver or the socket may raise; translated at this module's edge.
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError, TimeoutError)
_ALREADY_THERE = (asyncpg.UniqueViolationError, asyncpg.DuplicateObjectError, asyncpg.DuplicateTableError)
_MIGRATION_LOCK = "safelinks:migrations"


class PostgresOptionsError(StoreError):
    """The database URL carries a pool option that is not a number."""


def translate(exc: BaseException) -> StoreError:
    """The store's exception for an asyncpg or socket failure."""
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, asyncpg.UniqueViolationError):
        return DuplicateKey(str(exc))
    if isinstance(exc, _TRANSIENT):
        return StoreUnavailable(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, asyncpg.InterfaceError) and ("closed" in str(exc) or "released back" in str(exc)):
        # "connection is closed"; or asyncpg already took back a pooled connection the server dropped
        return StoreUnavailable(f"{type(exc).__name__}: {exc}")
    return StoreError(f"{type(exc).__name__}: {exc}")


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except StoreError:
        raise
    except _DRIVER_ERRORS as exc:
        raise translate(exc) from exc


def is_dead(conn: asyncpg.Connection) -> bool:
    # asyncpg detaches a pooled connection from its proxy as soon as it notices the server closed it;
    # the proxy then refuses every call, is_closed() included.
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:
        return True


def _discard(conn: asyncpg.Connection) -> None:
    """Close a connection at once (the pool opens a fresh one); one already gone is left alone."""
    with suppress(asyncpg.InterfaceError):
        conn.terminate()


class _Tx:
    """Statements on one connection: inside a transaction, or (``autocommit``) each on its own."""

    def __init__(self, conn: asyncpg.Connection, statements: Statements, *, autocommit: bool = False) -> None:
        self._conn = conn
        self._statements = statements
        self._autocommit = autocommit
        self._append_locks: set[str] = set()

    async def _prepare(self, sql: str) -> str:
        stmt = self._statements(sql)
        table = stmt.ordered_table
        if table is not None and table not in self._append_locks:
            # See postgres_sql: appends to cursor-read tables commit in id order.
            assert not self._autocommit, "an ordered append must run inside a transaction"
            await self._conn.execute(APPEND_LOCK_SQL, table)
            self._append_locks.add(table)
        return stmt.text

    async def execute(self, sql: str, params: Params = ()) -> int:
        with _translated():
            return affected(await self._conn.execute(await self._prepare(sql), *params))

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        with _translated():
            await self._conn.executemany(await self._prepare(sql), [tuple(r) for r in rows])

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        with _translated():
            return [dict(r) for r in await self._conn.fetch(await self._prepare(sql), *params)]

    async def notify(self, channel: str, payload: str) -> None:
        """``NOTIFY`` listeners of ``channel`` in this schema when this transaction commits (nothing is sent if
        it rolls back)."""
        with _translated():
            await self._conn.execute(NOTIFY_SQL, channel, payload)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        with _translated():
            row = await self._conn.fetchrow(await self._prepare(sql), *params)
        return dict(row) if row is not None else None


def split_url(url: str) -> tuple[str, dict[str, Any]]:
    """The DSN for asyncpg and the pool options taken out of its query string."""
    parts = urlsplit(url)
    options: dict[str, Any] = {}
    kept = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in _POOL_OPTIONS:
            try:
                options[key] = _POOL_OPTIONS[key](value)
            except ValueError:
                raise PostgresOptionsError(f"database URL option {key} must be a number, not {value!r}") from None
        else:
            kept.append((key, value))
    scheme = "postgresql" if parts.scheme == "postgres" else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(kept), parts.fragment)), options


class PostgresDatabase:
    """A pool of connections to one PostgreSQL database."""

    dialect: Dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool, dsn: str, connect_timeout: float) -> None:
        self._pool = pool
        self._statements = Statements()
        self.dsn = dsn
        self.connect_timeout = connect_timeout

    @classmethod
    async def open(cls, url: str) -> PostgresDatabase:
        dsn, options = split_url(url)
        timeout = options.get("connect_timeout", 5.0)
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=options.get("pool_min_size", 1),
                max_size=options.get("pool_max_size", 10),
                timeout=timeout,
                command_timeout=options.get("command_timeout", 60.0),
                max_inactive_connection_lifetime=300.0,
            )
        except _DRIVER_ERRORS as exc:
            where = urlsplit(dsn).hostname or "localhost"
            raise StoreUnavailable(f"cannot open PostgreSQL at {where}: {translate(exc)}") from exc
        return cls(pool, dsn, timeout)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        with _translated():
            conn = await self._pool.acquire()  # when the server is down this raises at once
        try:
            yield conn
        except StoreUnavailable:
            _discard(conn)  # never hand a connection in doubt to the next caller: the pool opens a new one
            raise
        finally:
            with _translated():
                await self._pool.release(conn)

    async def _begin(self, *, readonly: bool = False) -> tuple[asyncpg.Connection, Any]:
        """A pooled connection with a transaction started on it.

        Nothing has been written before BEGIN, so a pooled connection the server dropped while it sat
        idle (a restart, a fail-over) is thrown away and the next one tried: after an outage callers
        get fresh connections instead of one error per stale connection.
        """
        last: StoreUnavailable | None = None
        for _ in range(self._pool.get_max_size() + 1):
            with _translated():
                conn = await self._pool.acquire()
            tx = conn.transaction(readonly=readonly)
            try:
                with _translated():
                    await tx.start()
                return conn, tx
            except StoreUnavailable as exc:
                last = exc
                _discard(conn)
                await self._pool.release(conn)
            except BaseException:
                await self._pool.release(conn)
                raise
        assert last is not None
        raise last

    async def _end(self, conn: asyncpg.Connection, tx: Any, *, commit: bool) -> None:
        try:
            if commit:
                with _translated():
                    await tx.commit()
            elif not is_dead(conn):
                try:
                    await tx.rollback()
                except _DRIVER_ERRORS:
                    _discard(conn)  # the pool replaces it
        except StoreUnavailable:
            _discard(conn)
            raise
        finally:
            with _translated():
                await self._pool.release(conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Tx]:
        conn, tx = await self._begin()
        try:
            yield _Tx(conn, self._statements)
        except BaseException:
            await self._end(conn, tx, commit=False)
            raise
        await self._end(conn, tx, commit=True)

    async def execute(self, sql: str, params: Params = ()) -> int:
        if self._statements(sql).ordered_table is not None:
            async with self.transaction() as tx:
                return await tx.execute(sql, params)
        async with self._connection() as conn:
            try:
                return await _Tx(conn, self._statements, autocommit=True).execute(sql, params)
            except StoreError as exc:
                # Two replicas racing on CREATE … IF NOT EXISTS: PostgreSQL may report the loser's catalog
                # insert as a duplicate, though the object now exists as asked.
                if isinstance(exc.__cause__, _ALREADY_THERE) and is_if_not_exists(sql):
                    return 0
                raise

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        async with self.transaction() as tx:
            await tx.executemany(sql, rows)

    async def _read(self, sql: str, run: Callable[[_Tx], Awaitable[T]]) -> T:
        if self._statements(sql).ordered_table is not None:  # INSERT … RETURNING into an ordered table
            async with self.transaction() as tx:
                return await run(tx)
        retries = self._pool.get_max_size() if is_select(sql) else 0
        for attempt in range(retries + 1):
            try:
                async with self._connection() as conn:
                    return await run(_Tx(conn, self._statements, autocommit=True))
            except StoreUnavailable:
                # A plain SELECT may be asked again on a fresh connection (a pooled one may have gone
                # stale in an outage); anything else may already have written, so it is not repeated.
                if attempt >= retries:
                    raise
        raise AssertionError("unreachable")

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._read(sql, lambda tx: tx.fetchall(sql, params))

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        return await self._read(sql, lambda tx: tx.fetchone(sql, params))

    async def iterate(self, sql: str, params: Params = (), *, batch: int = 1000) -> AsyncIterator[Row]:
        # A server-side cursor lives only inside a transaction; it fetches ``batch`` rows at a time.
        conn, tx = await self._begin(readonly=True)
        try:
            with _translated():
                async for record in conn.cursor(self._statements(sql).text, *params, prefetch=batch):
                    yield dict(record)
        finally:
            await self._end(conn, tx, commit=False)

    async def run_script(self, script: str) -> None:
        """Run several statements in one transaction (migrations)."""
        conn, tx = await self._begin()
        try:
            with _translated():
                await conn.execute(script)  # no parameters: the simple protocol takes many statements
        except BaseException:
            await self._end(conn, tx, commit=False)
            raise
        await self._end(conn, tx, commit=True)

    def migration_lock(self) -> AbstractAsyncContextManager[None]:
        """Held while migrating: replicas that start together migrate once, the others wait."""
        return self.advisory_lock(_MIGRATION_LOCK)

    @asynccontextmanager
    async def advisory_lock(self, name: str) -> AsyncIterator[None]:
        """A session-level advisory lock on ``name`` (waits for it), scoped to the current schema.

        It is held on a connection of its own, so work done under it can use the whole pool.
        """
        conn = await self.connect()
        try:
            key = await lock_key(conn, name)
            with _translated():
                await conn.execute("SELECT pg_advisory_lock($1)", key)
            yield  # closing the connection below releases the lock, even if unlocking is never reached
        finally:
            await close_quietly(conn)

    async def connect(self) -> asyncpg.Connection:
        """A connection of its own, outside the pool (locks and leaders hold one for as long as they last)."""
        with _translated():
            return await asyncpg.connect(self.dsn, timeout=self.connect_timeout)

    def change_signal(self) -> ChangeSignal:
        """``LISTEN`` on a connection of its own, polling while it is down (see ``shared.store.changes``)."""
        return NotifySignal(self.connect, change_channel)

    def leader(self, name: str, *, ttl: float = 30.0) -> AbstractAsyncContextManager[Leadership]:
        """``async with db.leader("feeds:urlhaus") as lead:`` — see ``shared.store.leader``."""
        check_request(name, ttl)
        return _advisory(self, name, ttl)

    @property
    def pool_size(self) -> int:
        return int(self._pool.get_size())

    async def close(self) -> None:
        try:
            async with asyncio.timeout(10):
                await self._pool.close()
        except _DRIVER_ERRORS:
            self._pool.terminate()


async def close_quietly(conn: asyncpg.Connection) -> None:
    """Close a connection of our own; a dead one is just dropped."""
    # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation that arrives as the
    # close completes, and a leader's owner cancelled at that moment would run on.
    try:
        async with asyncio.timeout(5):
            await conn.close()
    except _DRIVER_ERRORS:
        conn.terminate()


async def lock_key(conn: asyncpg.Connection, name: str) -> int:
    """A 64-bit advisory lock key for ``name``, distinct per schema so deployments sharing a database do not meet."""
    with _translated():
        key = await conn.fetchval(LOCK_KEY_SQL, name)
    return int(key)


async def change_channel(conn: asyncpg.Connection) -> str:
    """The channel the store's change signal uses in ``conn``'s schema (``Tx.notify`` sends on the same)."""
    with _translated():
        return str(await conn.fetchval(CHANNEL_SQL, CHANNEL))


@asynccontextmanager
async def _advisory(db: PostgresDatabase, name: str, ttl: float) -> AsyncIterator[Leadership]:
    """Leadership on PostgreSQL: a session-level ``pg_try_advisory_lock`` on a connection of its own, held
    for the whole block; a process that dies loses the connection and the lock with it at once, and a
    watchdog pings the connection and sets ``lost`` when it breaks."""
    holder = uuid.uuid4().hex
    conn = await db.connect()
    try:
        key = await lock_key(conn, name)
        try:
            got = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", key))
        except Exception as exc:
            raise translate(exc) from exc
        lead = Leadership(name, got, holder, backend_pid=conn.get_server_pid())
        if not got:
            yield lead
            return
        conn.add_termination_listener(lambda _conn: lead.lost.set())
        watchdog = asyncio.create_task(_ping(conn, lead, ttl / 3), name=f"leader-{name}")
        try:
            yield lead
        finally:
            await stop_tasks([watchdog])
            if not is_dead(conn):
                with suppress(Exception):
                    await conn.execute("SELECT pg_advisory_unlock($1)", key)
    finally:
        await close_quietly(conn)


async def _ping(conn: asyncpg.Connection, lead: Leadership, every: float) -> None:
    while not lead.lost.is_set():
        await asyncio.sleep(every)
        try:
            async with asyncio.timeout(every):
                await conn.fetchval("SELECT 1")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("leadership of %s lost: %s", lead.name, exc)
            lead.lost.set()
