"""Leaders for singleton jobs: of all the replicas asking, one at a time gets to run a named job.

::

    async with leader(db, "feeds:urlhaus") as lead:   # or db.leader(...) on PostgreSQL
        if lead:
            await update_feed()

``lead`` is a ``Leadership``: true while this process holds the job, false when another does
(the block then runs at once and should do nothing). Nobody waits: a replica that loses the race
simply skips the round. A job that runs for long should watch ``lead.lost`` (an ``asyncio.Event``)
and stop when it is set — the connection or lease behind the leadership went away, and another
replica may take over.

PostgreSQL: a session-level ``pg_try_advisory_lock`` on a dedicated connection, held for the
whole block. If the process dies the server drops the connection and the lock with it at once; a
watchdog pings the connection and sets ``lost`` when it breaks.

SQLite: a row in ``leases`` naming the holder (host, process id and a random id per acquisition,
so two tasks of one process and two processes on one file are told apart alike) with an expiry,
renewed while held. A holder that dies stops renewing and its lease lapses after ``ttl`` seconds —
at once if it was a process on the same host that no longer exists; a holder that cannot renew in
time marks itself lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from shared.store.database import Database
from shared.store.errors import StoreError

log = logging.getLogger(__name__)


class LeaderError(StoreError):
    """A leadership was asked for with a name or timing that cannot work."""


@dataclass
class Leadership:
    """The outcome of asking to lead ``name``; true while held."""

    name: str
    held: bool
    holder: str
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    backend_pid: int | None = None  # PostgreSQL: the server process holding the lock (for operators)

    def __bool__(self) -> bool:
        return self.held and not self.lost.is_set()


@asynccontextmanager
async def leader(db: Database, name: str, *, ttl: float = 30.0) -> AsyncIterator[Leadership]:
    """Try to lead ``name`` for the duration of the block (see the module text)."""
    if not name or len(name) > 200:
        raise LeaderError("a leader name is 1 to 200 characters")
    if ttl < 1:
        raise LeaderError("a leader ttl is at least one second")
    if db.dialect == "postgresql":
        async with _advisory(db, name, ttl) as lead:
            yield lead
    else:
        async with _lease(db, name, ttl) as lead:
            yield lead


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@asynccontextmanager
async def _advisory(db: Database, name: str, ttl: float) -> AsyncIterator[Leadership]:
    from shared.store.postgres import PostgresDatabase, close_quietly, is_dead, lock_key, translate

    assert isinstance(db, PostgresDatabase)
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
            await _stop(watchdog)
            if not is_dead(conn):
                with contextlib.suppress(Exception):
                    await conn.execute("SELECT pg_advisory_unlock($1)", key)
    finally:
        await close_quietly(conn)


async def _ping(conn: Any, lead: Leadership, every: float) -> None:
    while not lead.lost.is_set():
        await asyncio.sleep(every)
        try:
            await asyncio.wait_for(conn.fetchval("SELECT 1"), timeout=every)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("leadership of %s lost: %s", lead.name, exc)
            lead.lost.set()


async def _take_lease(db: Database, name: str, holder: str, ttl: float) -> bool:
    now = time.time()
    taken = await db.execute(
        "INSERT INTO leases (name, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, acquired_at = excluded.acquired_at, "
        "expires_at = excluded.expires_at WHERE leases.expires_at < ?",
        (name, holder, now, now + ttl, now),
    )
    return taken == 1


def _dead_here(holder: str) -> bool:
    """Whether ``holder`` names a process on this host that no longer runs (it was killed, or crashed)."""
    host, _, rest = holder.partition("/")
    pid = rest.partition("/")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@asynccontextmanager
async def _lease(db: Database, name: str, ttl: float) -> AsyncIterator[Leadership]:
    # host/pid/random: unique per acquisition, and telling whether a holder on this host is still alive.
    holder = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:12]}"
    taken = await _take_lease(db, name, holder, ttl)
    if not taken:
        row = await db.fetchone("SELECT holder FROM leases WHERE name = ?", (name,))
        if row is not None and _dead_here(str(row["holder"])):
            # A process on this host that was killed cannot renew; do not make the next one wait out its lease.
            await db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, row["holder"]))
            taken = await _take_lease(db, name, holder, ttl)
    lead = Leadership(name, taken, holder)
    if not lead.held:
        yield lead
        return
    renewer = asyncio.create_task(_renew(db, lead, ttl), name=f"lease-{name}")
    try:
        yield lead
    finally:
        await _stop(renewer)
        with contextlib.suppress(Exception):
            await db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))


async def _renew(db: Database, lead: Leadership, ttl: float) -> None:
    expires = time.time() + ttl
    while not lead.lost.is_set():
        await asyncio.sleep(ttl / 3)
        try:
            kept = await db.execute(
                "UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ?",
                (time.time() + ttl, lead.name, lead.holder),
            )
        except StoreError as exc:
            if time.time() < expires:  # keep trying while the lease we hold is still good
                log.warning("renewing the lease on %s failed: %s", lead.name, exc)
                continue
            kept = 0
        if not kept:
            log.warning("lease on %s lost", lead.name)
            lead.lost.set()
        else:
            expires = time.time() + ttl


async def lead_forever(db: Database, name: str, work: Callable[[], Awaitable[None]], *, ttl: float = 30.0,
                       retry: float = 1.0) -> None:
    """Run ``work`` whenever this process leads ``name``; stand by (asking every ``retry`` s) while another does.

    For loops that must run in one replica at a time (the alert engine): ``work`` is cancelled when
    the leadership is lost, and restarted when it is won again. Runs until cancelled.
    """
    while True:
        try:
            async with leader(db, name, ttl=ttl) as lead:
                if lead:
                    log.info("leading %s", name)
                    await _work_while_leading(lead, work)
        except StoreError as exc:  # the database is away: stand by and ask again
            log.warning("cannot ask to lead %s: %s", name, exc)
        await asyncio.sleep(retry)


async def _work_while_leading(lead: Leadership, work: Callable[[], Awaitable[None]]) -> None:
    running = asyncio.ensure_future(work())
    lost = asyncio.ensure_future(lead.lost.wait())
    try:
        await asyncio.wait({running, lost}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (running, lost):
            task.cancel()
        outcome, _ = await asyncio.gather(running, lost, return_exceptions=True)
    if isinstance(outcome, Exception):
        log.error("%s stopped: %s: %s", lead.name, type(outcome).__name__, outcome)
    elif lead.lost.is_set():
        log.warning("no longer leading %s", lead.name)
