"""The PostgreSQL backend: placeholders, errors, recovery after lost connections, migrations by many replicas."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import asyncpg
import pytest

from safelinks.server import create_app
from shared.config import Settings
from shared.store import DuplicateKey, StoreError, StoreUnavailable, open_database
from shared.store.migrations import available
from shared.store.postgres import PostgresDatabase, PostgresOptionsError, split_url
from shared.store.postgres_sql import number_placeholders
from shared.verdicts import Verdict
from tests.conftest import FakeClock
from tests.proxy_fixtures import Proxy
from tests.waiting import eventually


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = $1 AND b = $2"),
        ("SELECT '?' AS q, a FROM t WHERE a = ?", "SELECT '?' AS q, a FROM t WHERE a = $1"),
        ("SELECT 'it''s ?' FROM t WHERE a = ?", "SELECT 'it''s ?' FROM t WHERE a = $1"),
        ('SELECT "we?ird" FROM t WHERE a IN (?, ?, ?)', 'SELECT "we?ird" FROM t WHERE a IN ($1, $2, $3)'),
        ("SELECT 1 -- what?\nFROM t WHERE a = ?", "SELECT 1 -- what?\nFROM t WHERE a = $1"),
        ("SELECT 1", "SELECT 1"),
    ],
)
def test_placeholders_are_numbered_outside_literals(sql: str, expected: str) -> None:
    """``?`` becomes ``$n`` in order, except inside strings, quoted names and comments."""
    assert number_placeholders(sql) == expected


@pytest.mark.parametrize(
    ("url", "dsn", "options"),
    [
        ("postgresql://u@h:5432/db", "postgresql://u@h:5432/db", {}),
        ("postgres://u@h/db?pool_max_size=4&search_path=s1", "postgresql://u@h/db?search_path=s1",
         {"pool_max_size": 4}),
        ("postgresql://u@h/db?command_timeout=2.5&application_name=x", "postgresql://u@h/db?application_name=x",
         {"command_timeout": 2.5}),
    ],
)
def test_pool_options_are_taken_out_of_the_url(url: str, dsn: str, options: dict[str, Any]) -> None:
    """Pool options in the query string tune the pool; the rest stays for the server."""
    assert split_url(url) == (dsn, options)


def test_bad_pool_option_names_the_option() -> None:
    """A pool option that is not a number is refused, naming it."""
    with pytest.raises(PostgresOptionsError, match="pool_max_size"):
        split_url("postgresql://u@h/db?pool_max_size=lots")


async def test_unreachable_server_is_store_unavailable() -> None:
    """A refused connection is StoreUnavailable, not a library error."""
    with pytest.raises(StoreUnavailable, match=r"cannot open PostgreSQL at 127\.0\.0\.1"):
        await open_database("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2")


async def test_rows_types_and_errors(pg_url: str) -> None:
    """Rows are dicts with Python types; a unique violation is DuplicateKey; bad SQL is StoreError."""
    db = await open_database(pg_url)
    try:
        assert db.dialect == "postgresql"
        await db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, at DOUBLE PRECISION, flag BOOLEAN, n BIGINT)")
        assert await db.execute("INSERT INTO t VALUES (?, ?, ?, ?)", ("a", 1.5, True, 2**40)) == 1
        assert await db.fetchone("SELECT * FROM t WHERE k = ?", ("a",)) == {
            "k": "a", "at": 1.5, "flag": True, "n": 2**40}
        with pytest.raises(DuplicateKey):
            await db.execute("INSERT INTO t VALUES (?, ?, ?, ?)", ("a", 2.0, False, 1))
        with pytest.raises(StoreError) as err:
            await db.execute("SELEKT 1")
        assert not isinstance(err.value, StoreUnavailable)
        assert await db.execute("UPDATE t SET n = n + 1") == 1
        assert await db.fetchone("SELECT * FROM t WHERE k = ?", ("missing",)) is None
    finally:
        await db.close()


async def test_transaction_commits_all_or_nothing(pg_url: str) -> None:
    """A transaction that raises leaves nothing behind; one that ends commits everything."""
    db = await open_database(pg_url)
    try:
        await db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)")
        with pytest.raises(DuplicateKey):
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO t VALUES (?)", (1,))
                await tx.execute("INSERT INTO t VALUES (?)", (1,))
        assert await db.fetchall("SELECT k FROM t") == []
        async with db.transaction() as tx:
            await tx.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(5)])
        assert len(await db.fetchall("SELECT k FROM t")) == 5
    finally:
        await db.close()


async def test_iterate_streams_with_a_cursor(pg_url: str) -> None:
    """iterate() yields every row in order, in batches, and leaves the pool usable after an early stop."""
    db = await open_database(pg_url + "&pool_max_size=1")
    try:
        await db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)")
        await db.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(2500)])
        seen = [r["k"] async for r in db.iterate("SELECT k FROM t WHERE k >= ? ORDER BY k", (100,), batch=300)]
        assert seen == list(range(100, 2500))
        async for row in db.iterate("SELECT k FROM t ORDER BY k"):
            if row["k"] == 3:
                break
        # One connection in the pool: this would hang if the early stop had kept it.
        assert await asyncio.wait_for(db.fetchone("SELECT COUNT(*) AS n FROM t"), 5) == {"n": 2500}
    finally:
        await db.close()


async def test_replicas_starting_together_migrate_once(pg_url: str) -> None:
    """Six processes' worth of pools opening one empty schema at once apply each migration exactly once."""
    dbs = await asyncio.gather(*(open_database(pg_url) for _ in range(6)))
    try:
        rows = await dbs[0].fetchall("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == [v for v, _, _ in available()]
    finally:
        for db in dbs:
            await db.close()


async def test_pool_recovers_after_its_connections_are_killed(pg_url: str, postgres_base_url: str) -> None:
    """Pooled connections the server terminated are replaced: the next reads and transactions just work."""
    app = "safelinks-recovery-" + re.sub(r"\W", "", pg_url[-12:])
    db = await open_database(pg_url + f"&application_name={app}&pool_min_size=3&pool_max_size=3")
    try:
        await asyncio.gather(*(db.fetchone("SELECT pg_sleep(0.05)") for _ in range(3)))
        admin = await asyncpg.connect(postgres_base_url)
        try:
            pids = [r["pid"] for r in await admin.fetch(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1", app)]
            killed = await admin.fetchval("SELECT COUNT(pg_terminate_backend(pid)) FROM unnest($1::int[]) AS pid", pids)

            # Terminating is asynchronous: wait until the server has ended those very backends (the store's
            # listening connection reconnects at once under the same application name, so a count by name
            # may never reach zero).
            async def gone() -> bool:
                return await admin.fetchval(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", pids) == 0

            await eventually(gone)
        finally:
            await admin.close()
        assert killed >= 1
        assert await asyncio.gather(*(db.fetchone("SELECT 1 AS ok") for _ in range(3))) == [{"ok": 1}] * 3
        async with db.transaction() as tx:
            assert await tx.fetchone("SELECT 2 AS ok") == {"ok": 2}
    finally:
        await db.close()


async def test_if_not_exists_race_is_not_an_error(pg_url: str) -> None:
    """Concurrent CREATE … IF NOT EXISTS of one table all succeed (PostgreSQL reports the race as a duplicate)."""
    dbs = [await PostgresDatabase.open(pg_url) for _ in range(4)]
    try:
        for n in range(5):
            name = f"race_{n}"
            # gather raises if any replica's CREATE failed; each then sees the one table, empty and usable.
            await asyncio.gather(*(db.execute(f"CREATE TABLE IF NOT EXISTS {name} (k INTEGER)") for db in dbs))
            assert await dbs[n % 4].execute(f"INSERT INTO {name} (k) VALUES (?)", (n,)) == 1
            seen = await asyncio.gather(*(db.fetchall(f"SELECT k FROM {name}") for db in dbs))
            assert seen == [[{"k": n}]] * len(dbs)
    finally:
        for db in dbs:
            await db.close()


async def test_proxy_end_to_end_on_postgresql(aiohttp_client: Any, make_settings: Any, pg_url: str) -> None:
    """SAFELINKS_DATABASE_URL=postgresql://… runs the proxy: clicks, a warning and a single-use click-through."""
    settings: Settings = make_settings(database_url=pg_url)
    proxy = Proxy(await aiohttp_client(create_app(settings, role="proxy", clock=FakeClock())))
    assert proxy.services.db.dialect == "postgresql"
    r = await proxy.click(proxy.link("https://example.com/a?b=1"))
    assert r.status == 302 and r.headers["Location"] == "https://example.com/a?b=1"
    evil = "https://evil.example/login"
    await proxy.services.admin_verdicts.set(evil, Verdict.MALICIOUS, threat_types=("Phish",))
    page = await (await proxy.click(proxy.link(evil))).text()
    token = re.search(r'name="token" value="([^"]+)"', page)
    assert token is not None
    through = await proxy.click("/v1/url/continue", method="POST", data={"token": token.group(1)})
    assert through.status == 303 and through.headers["Location"] == evil
    again = await proxy.click("/v1/url/continue", method="POST", data={"token": token.group(1)})
    assert again.status == 409
    allowed, view, clicked = await proxy.stored()
    assert allowed.action_type.value == "ClickAllowed" and view.action_type.value == "ClickBlocked"
    assert clicked.is_clicked_through and clicked.report_id == view.report_id
    assert (await proxy.services.clicks.get_view(view.report_id)) == view
    health = await proxy.client.get("/healthz")
    assert health.status == 200 and (await health.json())["database"] == "ok"


async def test_cursor_readers_never_skip_a_late_commit(pg_url: str) -> None:
    """Appends from many writers become visible in id order, so 'every id after the last done' misses none."""
    import random

    db = await open_database(pg_url)
    rng = random.Random(7)
    done = asyncio.Event()
    seen: list[int] = []

    async def writer(n: int) -> None:
        for i in range(15):
            async with db.transaction() as tx:
                await tx.execute(
                    "INSERT INTO verdict_changes (expression, old_verdict, new_verdict, source, changed_at) "
                    "VALUES (?, 'unknown', 'malicious', 'test', ?)", (f"w{n}-{i}.example/", 0.0))
                await asyncio.sleep(rng.random() * 0.01)  # a slow commit: later ids may be ready first

    async def reader() -> None:
        cursor = 0
        while True:
            finished = done.is_set()
            rows = await db.fetchall("SELECT id FROM verdict_changes WHERE id > ? ORDER BY id", (cursor,))
            if rows:
                seen.extend(int(r["id"]) for r in rows)
                cursor = seen[-1]
            elif finished:
                return
            await asyncio.sleep(0.001)

    reading = asyncio.create_task(reader())
    await asyncio.gather(*(writer(n) for n in range(8)))
    done.set()
    await reading
    stored = [int(r["id"]) for r in await db.fetchall("SELECT id FROM verdict_changes ORDER BY id")]
    await db.close()
    assert len(stored) == 120 and seen == stored
