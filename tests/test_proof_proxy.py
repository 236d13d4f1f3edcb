"""Proofs with real processes and signals: a click that got its answer is stored, whatever dies.

Two proxy replicas on one PostgreSQL lose nothing when one is SIGKILLed under load; a proxy whose
PostgreSQL restarts under load answers an error page (the default, failing closed) or waits
(``SAFELINKS_DB_UNAVAILABLE=wait``), and every click it redirected is in the store afterwards.
The restart runs against a throw-away cluster this test creates, never the machine's server.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import aiohttp
import pytest

from shared.clicks import Workload
from shared.signing import Keyring, LinkContext, LinkSigner
from shared.store import open_database
from tests.conftest import BROWSER_UA, TEST_KEYS
from tests.processes import Replica, Replicas, ThrowawayPostgres, postgres_binaries
from tests.waiting import eventually

SIGNER = LinkSigner(Keyring.parse(TEST_KEYS, "k1"), "http://127.0.0.1:3978")


def link_path(n: int) -> str:
    wrapped = SIGNER.wrap(f"https://example.com/item/{n}", LinkContext(workload=Workload.TEAMS,
                                                                     recipient="alice@contoso.com"))
    return wrapped.removeprefix("http://127.0.0.1:3978")


async def stored_urls(database_url: str) -> set[str]:
    db = await open_database(database_url)
    try:
        return {r["url"] for r in await db.fetchall("SELECT url FROM clicks WHERE action_type = 'ClickAllowed'")}
    finally:
        await db.close()


async def test_sigkill_of_one_proxy_replica_loses_no_answered_click(pg_url: str, tmp_path: Path) -> None:
    """Two proxies on PostgreSQL under load, one SIGKILLed: every click answered 302 by either is stored."""
    cluster = Replicas.on(tmp_path, pg_url)
    try:
        a, b = await asyncio.gather(cluster.start("proxy"), cluster.start("proxy"))  # they migrate together
        answered: list[int] = []
        killed = asyncio.Event()
        turn = itertools.cycle([a, b])

        async def one(http: aiohttp.ClientSession, n: int, replica: Replica) -> None:
            try:
                async with http.get(replica.base + link_path(n), allow_redirects=False,
                                    headers={"User-Agent": BROWSER_UA}) as r:
                    if r.status == 302:
                        answered.append(n)
            except aiohttp.ClientError:
                return  # the killed replica's connections: no answer, so nothing was promised
            if len(answered) >= 300 and not killed.is_set():
                killed.set()
                a.kill()

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=48)) as http:
            await asyncio.gather(*(one(http, n, next(turn)) for n in range(3000)))
        assert killed.is_set() and a.proc.returncode is not None and a.proc.returncode < 0
        assert b.proc.poll() is None, "the surviving replica must keep serving"
        stored = await stored_urls(pg_url)
        missing = [n for n in answered if f"https://example.com/item/{n}" not in stored]
        assert len(answered) > 1500 and missing == []
    finally:
        cluster.stop_all()


@pytest.fixture
def own_postgres() -> Iterator[ThrowawayPostgres]:
    if postgres_binaries() is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed under /usr/lib/postgresql")
    cluster = ThrowawayPostgres.create()
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.mark.parametrize("mode", ["error-page", "wait"])
async def test_postgres_restart_under_load(own_postgres: ThrowawayPostgres, tmp_path: Path, mode: str) -> None:
    """PostgreSQL stops for ~2 s under load: error pages (or waiting) meanwhile, then 302s; no 302 unstored."""
    url = own_postgres.url + "?pool_max_size=4&connect_timeout=1"
    cluster = Replicas.on(tmp_path, url, db_unavailable=mode)
    try:
        proxy = await cluster.start("proxy")
        outcomes: list[tuple[float, int, int]] = []  # (when, n, status)
        counter = itertools.count()
        stop = asyncio.Event()

        async def client(http: aiohttp.ClientSession) -> None:
            while not stop.is_set():
                n = next(counter)
                async with http.get(proxy.base + link_path(n), allow_redirects=False,
                                    headers={"User-Agent": BROWSER_UA}) as r:
                    outcomes.append((time.monotonic(), n, r.status))
                await asyncio.sleep(0.005)  # pacing of each client's clicks

        async def answered(after: float, count: int) -> bool:
            return sum(when > after for when, _, _ in outcomes) >= count

        async def outage() -> tuple[float, float]:
            await eventually(partial(answered, 0.0, 100), timeout=30)  # clicks are being served before it
            down = time.monotonic()
            await asyncio.to_thread(own_postgres.stop, "fast")
            await asyncio.sleep(2.0)  # the outage itself: how long the server stays down
            await asyncio.to_thread(own_postgres.start)
            return down, time.monotonic()

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            clients = [asyncio.create_task(client(http)) for _ in range(8)]
            _, up = await outage()
            # Clicks well after the restart (2 s to recover), to show the proxy recovered by itself.
            await eventually(partial(answered, up + 2.0, 100), timeout=30)
            stop.set()
            await asyncio.gather(*clients)
        statuses = Counter(status for _, _, status in outcomes)
        assert set(statuses) <= {302, 503}, statuses
        if mode == "error-page":
            assert statuses[503] > 0, "the outage should have been visible as error pages"
        else:
            assert statuses[503] == 0, statuses
        late = [status for when, _, status in outcomes if when > up + 2.0]
        assert late and set(late) == {302}, "the proxy must recover by itself once PostgreSQL is back"
        stored = await stored_urls(url)
        redirected = [n for _, n, status in outcomes if status == 302]
        assert [n for n in redirected if f"https://example.com/item/{n}" not in stored] == []
        assert proxy.proc.poll() is None
    finally:
        cluster.stop_all()
