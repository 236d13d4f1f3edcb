"""The embedded backend: SQLite in WAL mode, one writer thread, one reader thread, one checkpointer.

Each connection lives on its own thread so the event loop never waits on disk. Writes are
serialised (SQLite allows one writer); reads run beside them, as WAL permits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from shared.store.changes import ChangeSignal, DataVersionSignal, NoSignal
from shared.store.database import Dialect, Params, Row
from shared.store.errors import DuplicateKey, StoreError, StoreUnavailable
from shared.store.leadership import Leadership, check_request
from shared.store.leases import lease

T = TypeVar("T")
log = logging.getLogger(__name__)
_BUSY_TIMEOUT_MS = 30_000
_CHECKPOINT_SECONDS = 0.2


def _translate(exc: sqlite3.Error) -> StoreError:
    if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc):
        return DuplicateKey(str(exc))
    if isinstance(exc, sqlite3.OperationalError):
        return StoreUnavailable(str(exc))
    return StoreError(str(exc))


def _private_files(path: Path) -> None:
    """The data directory 0700 when we make it, the database 0600: it holds people's clicks and messages.

    SQLite gives the ``-wal`` and ``-shm`` files the database file's permissions. A database file
    an older version left readable to others is tightened.
    """
    parent = path.parent
    if not parent.exists():
        parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        os.chmod(parent, 0o700)  # mkdir's mode is filtered by the umask
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(OSError):
            if name.stat().st_mode & 0o077:
                os.chmod(name, name.stat().st_mode & 0o700)


def _connect(path: str, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    # Deleted and overwritten content is zeroed, not left in free space for a file reader to find
    # (an erased person's data, say).
    conn.execute("PRAGMA secure_delete=ON")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    return conn


class _Conn:
    """One connection pinned to one thread."""

    def __init__(self, conn: sqlite3.Connection, name: str) -> None:
        self.conn = conn
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.pool, fn, self.conn)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    def close(self) -> None:
        self.pool.submit(self.conn.close).result()
        self.pool.shutdown(wait=True)


class _Tx:
    """Statements run inside an open transaction on the writer connection."""

    def __init__(self, writer: _Conn) -> None:
        self._w = writer

    async def execute(self, sql: str, params: Params = ()) -> int:
        return await self._w.run(lambda c: c.execute(sql, tuple(params)).rowcount)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        batch = [tuple(r) for r in rows]
        await self._w.run(lambda c: c.executemany(sql, batch))

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._w.run(lambda c: [dict(r) for r in c.execute(sql, tuple(params))])

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        def one(c: sqlite3.Connection) -> Row | None:
            row = c.execute(sql, tuple(params)).fetchone()
            return dict(row) if row is not None else None

        return await self._w.run(one)


class _Checkpointer:
    """Copies the write-ahead log into the database file from a thread of its own.

    SQLite otherwise checkpoints inside whichever commit crosses the log's size limit: with the click
    log committed on the event loop's thread, that commit stalls every click in flight for several
    milliseconds (it was most of the p99). A passive checkpoint never waits for or blocks writers. The
    writer keeps a high automatic limit as a safety net should this thread ever fall behind.
    """

    SAFETY_NET_PAGES = 10_000

    def __init__(self, path: str, synchronous: str, interval: float) -> None:
        self._path = path
        self._synchronous = synchronous
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = _connect(self._path, self._synchronous)
        failing = False
        try:
            while not self._stop.wait(self._interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:  # a busy or vanished file: the next round tries again
                    if not failing:  # once per outage, not five lines a second
                        log.warning("checkpoints of %s are failing (the writer's own limit still applies): %s",
                                    self._path, exc)
                    failing = True
                else:
                    if failing:
                        log.info("checkpoints of %s work again", self._path)
                    failing = False
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class SQLiteDatabase:
    """The embedded default database."""

    dialect: Dialect = "sqlite"

    def __init__(self, writer: _Conn, reader: _Conn, path: str, checkpointer: _Checkpointer | None = None) -> None:
        self._writer = writer
        self._reader = reader
        self._checkpointer = checkpointer
        self._lock = asyncio.Lock()
        self.path = path

    @classmethod
    async def open(cls, path: str, synchronous: str = "NORMAL") -> SQLiteDatabase:
        if path != ":memory:":
            _private_files(Path(path))
        loop = asyncio.get_running_loop()
        try:
            w = await loop.run_in_executor(None, _connect, path, synchronous)
            r = await loop.run_in_executor(None, _connect, path, synchronous)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open {path}: {exc}") from exc
        r.execute("PRAGMA query_only=ON")
        checkpointer = None
        if path != ":memory:":
            w.execute(f"PRAGMA wal_autocheckpoint={_Checkpointer.SAFETY_NET_PAGES}")
            checkpointer = _Checkpointer(path, synchronous, _CHECKPOINT_SECONDS)
        return cls(_Conn(w, "sqlite-writer"), _Conn(r, "sqlite-reader"), path, checkpointer)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Tx]:
        async with self._lock:
            await self._writer.run(lambda c: c.execute("BEGIN IMMEDIATE"))
            try:
                yield _Tx(self._writer)
            except BaseException:
                await self._writer.run(lambda c: c.execute("ROLLBACK"))
                raise
            else:
                await self._writer.run(lambda c: c.execute("COMMIT"))

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._lock:
            return await _Tx(self._writer).execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """All rows in one transaction, run on the event loop's own thread when the file is free.

        This is the group-commit path of the click log. Handing it to the writer thread looks kinder to
        the loop but is slower under load: the thread must win the GIL from a busy loop, which takes up
        to a switch interval (5 ms) per batch, and every waiting click waits with it. A batch insert
        without fsync (WAL, synchronous=NORMAL) takes well under a millisecond. If another process
        holds the write lock (a CLI feed import, say), waiting for it must not freeze the loop: then
        the batch goes to the writer thread, which waits with the normal busy timeout.
        """
        batch = [tuple(r) for r in rows]

        def insert(c: sqlite3.Connection) -> None:
            try:
                c.executemany(sql, batch)
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")

        def begin_now(c: sqlite3.Connection) -> bool:
            c.execute("PRAGMA busy_timeout=0")
            try:
                c.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                return False  # the write lock is taken elsewhere
            finally:
                c.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            return True

        def begin_waiting(c: sqlite3.Connection) -> None:
            c.execute("BEGIN IMMEDIATE")
            insert(c)

        async with self._lock:
            try:
                if begin_now(self._writer.conn):
                    insert(self._writer.conn)
                    return
            except sqlite3.Error as exc:
                raise _translate(exc) from exc
            await self._writer.run(begin_waiting)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._reader.run(lambda c: [dict(r) for r in c.execute(sql, tuple(params))])

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        def one(c: sqlite3.Connection) -> Row | None:
            row = c.execute(sql, tuple(params)).fetchone()
            return dict(row) if row is not None else None

        return await self._reader.run(one)

    async def iterate(self, sql: str, params: Params = (), *, batch: int = 1000) -> AsyncIterator[Row]:
        # A dedicated connection: a long scan must not hold the shared reader thread.
        conn = _Conn(_connect(self.path, "NORMAL"), "sqlite-scan")
        try:
            cursor: Any = await conn.run(lambda c: c.execute(sql, tuple(params)))
            while True:
                rows = await conn.run(lambda c: cursor.fetchmany(batch))
                if not rows:
                    break
                for r in rows:
                    yield dict(r)
        finally:
            conn.close()

    async def run_script(self, script: str) -> None:
        """Run several statements in one transaction (migrations)."""
        async with self._lock:

            def run(c: sqlite3.Connection) -> None:
                c.execute("BEGIN IMMEDIATE")
                try:
                    for stmt in _split_statements(script):
                        c.execute(stmt)
                except BaseException:
                    c.execute("ROLLBACK")
                    raise
                c.execute("COMMIT")

            await self._writer.run(run)

    def change_signal(self) -> ChangeSignal:
        """``PRAGMA data_version`` on a connection of its own (see ``shared.store.changes``)."""
        return NoSignal() if self.path == ":memory:" else DataVersionSignal(self.path)

    def leader(self, name: str, *, ttl: float = 30.0) -> AbstractAsyncContextManager[Leadership]:
        """``async with db.leader("feeds:urlhaus") as lead:`` — see ``shared.store.leader``."""
        check_request(name, ttl)
        return lease(self, name, ttl)

    def migration_lock(self) -> AbstractAsyncContextManager[None]:
        """Nothing to take: each migration's script runs under ``BEGIN IMMEDIATE``, one writer at a time."""
        return contextlib.nullcontext()

    async def close(self) -> None:
        async with self._lock:
            if self._checkpointer is not None:
                await asyncio.get_running_loop().run_in_executor(None, self._checkpointer.stop)
                self._checkpointer = None
            await asyncio.get_running_loop().run_in_executor(None, self._writer.close)
            await asyncio.get_running_loop().run_in_executor(None, self._reader.close)


def _split_statements(script: str) -> list[str]:
    out, buf = [], []
    for line in script.splitlines():
        if line.strip().startswith("--"):
            continue
        buf.append(line)
        if line.rstrip().endswith(";") and sqlite3.complete_statement("\n".join(buf)):
            out.append("\n".join(buf))
            buf = []
    if "".join(buf).strip():
        out.append("\n".join(buf))
    return out
