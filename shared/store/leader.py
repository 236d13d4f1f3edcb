"""Leaders for singleton jobs: of all the replicas asking, one at a time gets to run a named job.

::

    async with db.leader("feeds:urlhaus") as lead:
        if lead:
            await update_feed()

``lead`` is a ``Leadership``: true while this process holds the job, false when another does
(the block then runs at once and should do nothing). Nobody waits: a replica that loses the race
simply skips the round. A job that runs for long should watch ``lead.lost`` (an ``asyncio.Event``)
and stop when it is set — the connection or lease behind the leadership went away, and another
replica may take over.

Each backend owns how it leads (``Database.leader``): PostgreSQL holds a session-level advisory lock
on a connection of its own (``shared.store.postgres``); SQLite holds a renewed lease row
(``shared.store.leases``). Either way a process that dies gives the job up: at once on PostgreSQL and
for a dead process on the same host, after ``ttl`` seconds otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from shared.store.database import Database
from shared.store.errors import StoreError
from shared.store.leadership import Leadership

__all__ = ["lead_forever"]

log = logging.getLogger(__name__)


async def lead_forever(db: Database, name: str, work: Callable[[], Awaitable[None]], *, ttl: float = 30.0,
                       retry: float = 1.0) -> None:
    """Run ``work`` whenever this process leads ``name``; stand by (asking every ``retry`` s) while another does.

    For loops that must run in one replica at a time (the alert engine): ``work`` is cancelled when
    the leadership is lost, and restarted when it is won again. Runs until cancelled.
    """
    while True:
        try:
            async with db.leader(name, ttl=ttl) as lead:
                if lead:
                    log.info("leading %s", name)
                    await _work_while_leading(lead, work)
                else:
                    log.debug("%s is led elsewhere; standing by", name)
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
