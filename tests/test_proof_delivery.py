"""Proofs with real processes: every alert and notification exactly once, through replicas, outages and kills.

Replicas are ``safelinks serve`` subprocesses on one PostgreSQL schema: proxies take the clicks,
workers run the alert engine (one leads at a time) and send e-mail, bots deliver the Teams cards.
The Teams stand-in and the SMTP server run in the test process. Outages are shortened to seconds:
the Teams storm is 2 s of 429 (Retry-After: 1) then 2 s of 500 instead of a minute, and outbox
leases are 3 s (``SAFELINKS_OUTBOX_LEASE_SECONDS``) instead of 60, so a dead worker's item is
taken over quickly.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiosmtpd.controller import Controller

from shared.store import open_database
from shared.verdicts import Verdict
from shared.verdicts.admin import AdminVerdicts
from tests.delivery_rig import (
    StormyTeams,
    click,
    make_security_channel,
    mark_malicious,
    phish_url,
    replicas_for,
    subjects,
    urls_in,
)
from tests.processes import Replica
from tests.smtp_server import Mailbox, smtp_server
from tests.teams_standin import CHANNEL_ID, GROUP_CHAT_ID, TEAM_ID, user
from tests.waiting import eventually


@pytest.fixture
def teams() -> Iterator[StormyTeams]:
    people = [user(7, name="Sam Analyst")]
    standin = StormyTeams(members={TEAM_ID: people, CHANNEL_ID: people, GROUP_CHAT_ID: people}).start()
    yield standin
    standin.hold_updates.clear()
    standin.stop()


@pytest.fixture
def mail() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as found:
        yield found


@pytest.fixture
async def seeded(pg_url: str) -> AsyncIterator[str]:
    """The schema migrated, with phish0..phish49.example malicious, before any replica starts."""
    db = await open_database(pg_url)
    await mark_malicious(db, range(50))
    await db.close()
    yield pg_url


async def count_alerts(url: str) -> int:
    db = await open_database(url)
    try:
        row = await db.fetchone("SELECT COUNT(*) AS n FROM alerts")
        return int(row["n"]) if row else 0
    finally:
        await db.close()


async def _quiet(url: str) -> bool:
    db = await open_database(url)
    try:
        # A summary held for the end of its window (minutes away) is no delivery this test waits for.
        due = await db.fetchone("SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending' AND next_attempt_at < ?",
                                (time.time() + 120,))
        clicks = await db.fetchone("SELECT COALESCE(MAX(id), 0) AS n FROM clicks")
        read = await db.fetchone("SELECT position FROM alert_cursors WHERE name = 'clicks'")
    finally:
        await db.close()
    assert due is not None and clicks is not None
    return due["n"] == 0 and read is not None and read["position"] >= clicks["n"]


async def settle(url: str) -> None:
    """Wait until nothing can arrive any more: every click read by the engine, nothing left to deliver.

    Anything that would arrive twice is an outbox item, and no item waits: what has arrived is all."""
    await eventually(lambda: _quiet(url), timeout=30)


async def test_replicas_raise_and_notify_each_alert_once(seeded: str, teams: StormyTeams,
                                                         mail: tuple[Mailbox, int], tmp_path: Path) -> None:
    """2 proxies, 2 workers, 2 bots: 20 malicious clicks (8 clicked through), 30 clean, then 5 of the clean hosts
    turn malicious: 33 alerts (5 from the look-back, run once), 25 cards, 33 e-mails, each exactly once."""
    box, port = mail
    # Every alert's own e-mail, to count them: no recipient budget holds any back for a summary here.
    cluster = replicas_for(tmp_path, seeded, teams, port, alert_notify_burst=1000)
    try:
        bots = await asyncio.gather(cluster.start("bot"), cluster.start("bot"))
        await make_security_channel(bots[0], teams)
        proxies = await asyncio.gather(cluster.start("proxy"), cluster.start("proxy"))
        await asyncio.gather(cluster.start("worker"), cluster.start("worker"))
        async with aiohttp.ClientSession() as http:
            statuses = await asyncio.gather(
                *(click(http, proxies[n % 2], n, phish_url(n), through=n < 8) for n in range(20)),
                *(click(http, proxies[n % 2], 100 + n, f"https://clean{n}.example/") for n in range(30)))
        assert statuses.count(303) == 8 and statuses.count(200) == 12 and statuses.count(302) == 30
        await eventually(lambda: _equals(count_alerts(seeded), 28), timeout=30)
        db = await open_database(seeded)
        try:
            admin = AdminVerdicts(db)
            for n in range(5):  # their earlier clicks now fall under the 48-hour look-back
                await admin.set(f"clean{n}.example", Verdict.MALICIOUS, threat_types=("Phish",), reason="late")
        finally:
            await db.close()
        await eventually(lambda: _equals(count_alerts(seeded), 33), timeout=30)
        await eventually(lambda: _true(len(teams.threads()) >= 25 and len(box.messages) >= 33), timeout=30)
        await settle(seeded)
        assert await count_alerts(seeded) == 33
        threads = teams.threads()
        assert len(threads) == 25, [sorted(urls_in(c)) for c in threads]
        assert sorted(u for c in threads for u in urls_in(c)) == sorted(phish_url(n) for n in range(20))
        assert len(box.messages) == 33
        got = sorted(subjects(box))
        assert got.count("[High] A user clicked through to a potentially malicious URL") == 8
        assert got.count("[High] A potentially malicious URL click was detected") == 5
    finally:
        cluster.stop_all()


async def test_teams_storm_then_every_card_in_order(seeded: str, teams: StormyTeams, mail: tuple[Mailbox, int],
                                                    tmp_path: Path) -> None:
    """Teams answers 429 (Retry-After) then 500 while alerts are raised; afterwards each card arrives once, in order."""
    cluster = replicas_for(tmp_path, seeded, teams, mail[1])
    try:
        bot = await cluster.start("bot")
        await make_security_channel(bot, teams)
        proxy = await cluster.start("proxy")
        await cluster.start("worker")
        teams.storm(throttled=2.0, failing=2.0)
        async with aiohttp.ClientSession() as http:
            for n in range(6):
                assert await click(http, proxy, n, phish_url(n)) == 200
                # One alert after another: their cards queue in this order.
                await eventually(lambda n=n: _equals(count_alerts(seeded), n + 1), timeout=30)
        await eventually(lambda: _true(len(teams.threads()) >= 6), timeout=40)
        await settle(seeded)
        # Counted after the storm is over: the failing phase starts only once the throttled one ends.
        refused = [c for c in teams.writes() if c.status in (429, 500)]
        assert {c.status for c in refused} == {429, 500}, "the storm must have been felt"
        order = [next(iter(urls_in(c))) for c in teams.threads()]
        assert order == [phish_url(n) for n in range(6)]
    finally:
        cluster.stop_all()


async def test_mail_waits_for_smtp_to_come_back(seeded: str, teams: StormyTeams, tmp_path: Path) -> None:
    """With the SMTP server down, alerts' e-mails wait in the outbox; once it is back each arrives once."""
    box = Mailbox()
    port = _free_port()
    cluster = replicas_for(tmp_path, seeded, teams, port)
    try:
        proxy = await cluster.start("proxy")
        await cluster.start("worker")
        async with aiohttp.ClientSession() as http:
            for n in range(4):
                assert await click(http, proxy, n, phish_url(n)) == 200
        await eventually(lambda: _equals(count_alerts(seeded), 4), timeout=20)
        await eventually(lambda: _failed_attempts(seeded), timeout=20)
        assert box.messages == []
        controller = Controller(box, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            await eventually(lambda: _true(len(box.messages) >= 4), timeout=40)
            await settle(seeded)
            assert sorted(subjects(box)) == ["[High] User clicked a malicious link in Teams chat"] * 4
            assert len({m["Message-ID"] for m in box.messages}) == 4
        finally:
            controller.stop()
    finally:
        cluster.stop_all()


async def test_bot_killed_while_updating_a_card_updates_it_once_in_place(
        seeded: str, teams: StormyTeams, mail: tuple[Mailbox, int], tmp_path: Path) -> None:
    """SIGKILL of the bot while Teams holds its card update: another bot finishes the update; never a second post."""
    cluster = replicas_for(tmp_path, seeded, teams, mail[1])
    try:
        first = await cluster.start("bot")
        await make_security_channel(first, teams)
        proxy = await cluster.start("proxy")
        await cluster.start("worker")
        async with aiohttp.ClientSession() as http:
            assert await click(http, proxy, 1, phish_url(1)) == 200
            await eventually(lambda: _true(len(teams.threads()) == 1), timeout=20)
            teams.hold_updates.set()
            assert await click(http, proxy, 1, phish_url(1), through=True) == 303
        await eventually(lambda: _true(bool(teams.held)), timeout=20)
        first.kill()
        teams.hold_updates.clear()
        await eventually(lambda: _true(len(teams.released) == len(teams.held)), timeout=20)  # answered
        assert teams.updates() == [], "the held update died with its bot"
        await cluster.start("bot")
        await eventually(lambda: _true(len(teams.updates()) >= 1), timeout=30)
        await settle(seeded)
        assert len(teams.threads()) == 1, "the card must never be posted twice"
        [update] = teams.updates()
        thread = teams.threads()[0]
        assert update.conversation_id and update.conversation_id.startswith(CHANNEL_ID)
        # The second view folded into the first view's alert; the click-through is the incident's other alert.
        assert "1 related alert" in json.dumps(update.body) and urls_in(update) == {phish_url(1)}
        assert thread.status == 201
    finally:
        cluster.stop_all()


async def _equals(value: Any, expected: int) -> bool:
    return bool(await value == expected)


async def _true(value: bool) -> bool:
    return value


async def _failed_attempts(url: str) -> bool:
    db = await open_database(url)
    try:
        row = await db.fetchone("SELECT COUNT(*) AS n FROM outbox WHERE kind = 'email' AND attempts > 0 "
                                "AND status = 'pending'")
        return bool(row and row["n"] >= 4)
    finally:
        await db.close()


def _free_port() -> int:
    from tests.processes import free_port

    return free_port()




async def leading_worker(url: str, workers: list[Replica]) -> Replica:
    """The worker process whose connection holds the alert engine's advisory lock."""
    import asyncpg
    import psutil

    from shared.store.postgres import split_url

    conn = await asyncpg.connect(split_url(url)[0])
    try:
        port = await conn.fetchval(
            "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND "
            "((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended(current_schema() || ':alerts:engine', 0)")
    finally:
        await conn.close()
    for worker in workers:
        if any(c.laddr.port == port for c in psutil.Process(worker.proc.pid).net_connections(kind="tcp")):
            return worker
    raise AssertionError(f"no worker holds the engine's lock (port {port})")


async def test_leading_worker_killed_mid_stream_alerts_once(seeded: str, teams: StormyTeams,
                                                           mail: tuple[Mailbox, int], tmp_path: Path) -> None:
    """SIGKILL of the worker running the alert engine while clicks arrive: the standby takes over, every alert
    is raised once, and every e-mail arrives (a copy re-sent from the kill window keeps its Message-ID)."""
    box, port = mail
    cluster = replicas_for(tmp_path, seeded, teams, port)
    try:
        proxy = await cluster.start("proxy")
        workers = list(await asyncio.gather(cluster.start("worker"), cluster.start("worker")))
        async with aiohttp.ClientSession() as http:
            for n in range(30):
                assert await click(http, proxy, n, phish_url(n)) == 200
                if n == 12:
                    await eventually(lambda: _true(len(box.messages) >= 5), timeout=20)
                    (await leading_worker(seeded, workers)).kill()
                await asyncio.sleep(0.05)
        await eventually(lambda: _equals(count_alerts(seeded), 30), timeout=30)
        await eventually(lambda: _true(len({m["Message-ID"] for m in box.messages}) >= 30), timeout=30)
        await settle(seeded)
        assert await count_alerts(seeded) == 30
        assert len({m["Message-ID"] for m in box.messages}) == 30
        assert len(box.messages) <= 31, "at most the one e-mail in flight at the kill may arrive twice"
        assert sum(w.proc.poll() is None for w in workers) == 1
    finally:
        cluster.stop_all()
