"""Stores in different schemas of one PostgreSQL database: their locks, leaders and change signals never meet.

Deployments sharing a database (and every PostgreSQL test here) are told apart by the URL's
``search_path``. Advisory locks and LISTEN/NOTIFY channels are database-wide in PostgreSQL, so the
store scopes each one to the current schema; within one schema they behave as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

import asyncpg

from shared.store import Database, open_database
from shared.store.counters import bump
from shared.store.postgres import PostgresDatabase, change_channel, lock_key
from shared.store.postgres_sql import APPEND_LOCK_SQL
from tests.waiting import eventually

MIGRATIONS = "safelinks:migrations"


@asynccontextmanager
async def stores(*urls: str) -> AsyncIterator[list[Database]]:
    dbs: list[Database] = []
    try:
        for url in urls:
            dbs.append(await open_database(url))
        yield dbs
    finally:
        for db in dbs:
            await db.close()


async def waiting_on(db: PostgresDatabase, name: str) -> bool:
    """Whether some session waits for the advisory lock ``name`` of ``db``'s schema."""
    conn = await db.connect()
    try:
        key = await lock_key(conn, name) & 0xFFFF_FFFF_FFFF_FFFF
        rows = await conn.fetch("SELECT classid::bigint AS hi, objid::bigint AS lo FROM pg_locks "
                                "WHERE locktype = 'advisory' AND objsubid = 1 AND NOT granted")
    finally:
        await conn.close()
    return any((r["hi"] << 32 | r["lo"]) == key for r in rows)


async def test_a_migration_in_one_schema_does_not_wait_for_another(pg_schemas: Callable[[], str]) -> None:
    """While one schema's migration lock is held, another schema migrates at once; the same schema waits."""
    here, there = pg_schemas(), pg_schemas()
    async with stores(here) as (db,):
        assert isinstance(db, PostgresDatabase)
        async with db.migration_lock():
            async with stores(there) as (other,):  # before scoping, this waited for the lock above forever
                assert await asyncio.wait_for(other.fetchone("SELECT COUNT(*) AS n FROM schema_migrations"), 5)
            second = asyncio.create_task(open_database(here))
            await eventually(lambda: waiting_on(db, MIGRATIONS))
            assert not second.done()
        await (await asyncio.wait_for(second, 10)).close()


async def test_leaders_of_one_name_in_two_schemas_both_lead(pg_schemas: Callable[[], str]) -> None:
    """A job led in one schema is led in another schema too; within a schema it still has one leader."""
    here = pg_schemas()
    async with (stores(here, pg_schemas(), here) as (a, b, a2), a.leader("alerts:engine") as lead_a,
                b.leader("alerts:engine") as lead_b, a2.leader("alerts:engine") as again):
        assert lead_a and lead_b
        assert not again


async def test_ordered_appends_in_two_schemas_do_not_queue(pg_schemas: Callable[[], str]) -> None:
    """An append to ``clicks`` left open in one schema does not hold up an append in another."""
    async with stores(pg_schemas(), pg_schemas()) as (a, b):
        assert isinstance(a, PostgresDatabase)
        conn = await a.connect()
        try:
            async with conn.transaction():
                await conn.execute(APPEND_LOCK_SQL, "clicks")  # held until this transaction ends
                async with b.transaction() as tx:
                    await asyncio.wait_for(tx.fetchone(APPEND_LOCK_SQL, ("clicks",)), 5)
        finally:
            await conn.close()


async def nonempty(items: list[str]) -> bool:
    return bool(items)


async def listen(db: PostgresDatabase, heard: list[str]) -> asyncpg.Connection:
    conn = await db.connect()
    await conn.add_listener(await change_channel(conn), lambda _c, _pid, _ch, payload: heard.append(payload))
    return conn


async def test_change_signals_are_heard_in_their_own_schema_only(pg_schemas: Callable[[], str]) -> None:
    """A change committed in one schema is signalled to that schema's listeners, not to another's."""
    async with stores(pg_schemas(), pg_schemas()) as (a, b):
        assert isinstance(a, PostgresDatabase) and isinstance(b, PostgresDatabase)
        heard_a: list[str] = []
        heard_b: list[str] = []
        conns = [await listen(a, heard_a), await listen(b, heard_b)]
        try:
            async with a.transaction() as tx:
                await bump(tx, "changed-in-a")
            async with b.transaction() as tx:
                await bump(tx, "changed-in-b")
            # One connection hears its notifications in commit order: had b's listener been on a's channel,
            # a's change (committed first) would be in heard_b before b's own.
            await eventually(partial(nonempty, heard_a))
            await eventually(partial(nonempty, heard_b))
            assert (heard_a, heard_b) == (["changed-in-a"], ["changed-in-b"])
        finally:
            for conn in conns:
                await conn.close()


async def test_change_signal_works_in_a_schema_with_a_long_quoted_name(pg_schemas: Callable[[str], str]) -> None:
    """A schema whose name needs quoting, or is too long to be part of a channel name, still hears its changes."""
    for name in ('we "ird" sch-ema', "s" * 60):
        async with stores(pg_schemas(name)) as (db,):
            assert isinstance(db, PostgresDatabase)
            heard: list[str] = []
            conn = await listen(db, heard)
            try:
                async with db.transaction() as tx:
                    await bump(tx, "verdicts")

                await eventually(partial(nonempty, heard))
                assert heard == ["verdicts"]
                assert len((await change_channel(conn)).encode()) <= 63
            finally:
                await conn.close()
