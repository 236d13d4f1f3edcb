"""Leadership by lease: a row in ``leases`` naming the holder, with an expiry renewed while held (SQLite).

The holder is host, process id and a random id per acquisition, so two tasks of one process and two
processes on one file are told apart alike. A holder that dies stops renewing and its lease lapses after
``ttl`` seconds — at once if it was a process on the same host that no longer exists; a holder that
cannot renew in time marks itself lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from shared.store.database import Executor
from shared.store.errors import StoreError
from shared.store.leadership import Leadership
from shared.tasks import stop_tasks

__all__ = ["lease"]

log = logging.getLogger(__name__)


async def _take_lease(db: Executor, name: str, holder: str, ttl: float) -> bool:
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
async def lease(db: Executor, name: str, ttl: float) -> AsyncIterator[Leadership]:
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
        try:
            await stop_tasks([renewer])
        finally:  # given up even when the holder is cancelled meanwhile: the next one need not wait out ttl
            with contextlib.suppress(Exception):
                await db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))


async def _renew(db: Executor, lead: Leadership, ttl: float) -> None:
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
