"""Load on the scaled-out layout: two proxy replicas and one worker on PostgreSQL, clicks at a fixed rate.

Run: .venv/bin/python bench/load.py [--rate 500] [--seconds 60] [--proxies 2] [--workers 1]
     [--database-url postgresql://postgres@127.0.0.1:5432/test]

The replicas are ``safelinks serve --role proxy|worker`` processes on one PostgreSQL (a schema of
their own, dropped afterwards, unless ``--keep``). Clicks arrive open-loop at ``--rate`` per second,
spread over the proxies in turn, for ``--seconds``; each is a distinct person's click on a wrapped
link:

* 80 % clean links: expect 302;
* 15 % links whose host is malicious: expect the warning page (200) and one alert
  ("User clicked a malicious link in Teams chat");
* 5 % the same, then "Continue anyway": expect 200 then 303, and two alerts (the one above and
  "A user clicked through to a potentially malicious URL").

At the end it waits for the worker's alert engine to catch up, then checks: no request failed or
got an unexpected status, every click is stored (by ReportId count), and the alerts are exactly
the expected ones, once each. It prints throughput, latency percentiles and the alert lag, and exits
non-zero if any check fails. The arrival rate is the requested one as long as the machine keeps up;
the printed throughput says whether it did.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.clicks import Workload
from shared.signing import Keyring, LinkContext, LinkSigner
from shared.store import open_database
from shared.verdicts import Verdict
from shared.verdicts.admin import AdminVerdicts
from tests.conftest import BROWSER_UA, TEST_KEYS
from tests.processes import Replica, Replicas

PUBLIC = "http://127.0.0.1:3978"
MALICIOUS_HOSTS = [f"phish{n}.load.example" for n in range(20)]
_TOKEN = re.compile(r'name="token" value="([^"]+)"')


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    clicks_made: int = 0
    alerts_expected: int = 0
    last_answer: float = 0.0


def link(signer: LinkSigner, n: int, url: str) -> str:
    context = LinkContext(workload=Workload.TEAMS, recipient=f"user{n}@contoso.example", recipient_id=f"aad-{n}",
                          tenant="tenant-1", conversation=f"19:chat-{n % 97}@thread.v2", message=f"17{n:011d}",
                          sender=f"sender{n % 13}@fabrikam.example")
    return signer.wrap(url, context).removeprefix(PUBLIC)


async def one(http: aiohttp.ClientSession, proxy: Replica, signer: LinkSigner, n: int, kind: str,
              tally: Tally) -> None:
    url = f"https://clean{n % 1000}.example/p/{n}" if kind == "clean" else \
        f"https://login.{MALICIOUS_HOSTS[n % len(MALICIOUS_HOSTS)]}/reset/{n}"
    want = 302 if kind == "clean" else 200
    started = time.perf_counter()
    try:
        async with http.get(proxy.base + link(signer, n, url), allow_redirects=False,
                            headers={"User-Agent": BROWSER_UA}) as r:
            page = await r.text()
            status = r.status
        tally.latencies.append(time.perf_counter() - started)
        tally.statuses[f"{kind}:{status}"] += 1
        if status != want:
            tally.errors.append(f"{kind} click {n}: {status}")
            return
        tally.clicks_made += 1
        tally.alerts_expected += 0 if kind == "clean" else 1
        if kind == "through":
            token = _TOKEN.search(page)
            if token is None:
                tally.errors.append(f"click {n}: no click-through offered")
                return
            started = time.perf_counter()
            async with http.post(proxy.base + "/v1/url/continue", data={"token": token.group(1)},
                                 allow_redirects=False,
                                 headers={"User-Agent": BROWSER_UA, "Sec-Fetch-Site": "same-origin"}) as r:
                await r.read()
                tally.latencies.append(time.perf_counter() - started)
                tally.statuses[f"continue:{r.status}"] += 1
                if r.status != 303:
                    tally.errors.append(f"continue {n}: {r.status}")
                    return
            tally.clicks_made += 1
            tally.alerts_expected += 1
        tally.last_answer = time.monotonic()
    except (aiohttp.ClientError, TimeoutError) as exc:
        tally.errors.append(f"{kind} click {n}: {type(exc).__name__}: {exc}")


async def drive(proxies: list[Replica], rate: float, seconds: float, seed: int) -> tuple[Tally, float]:
    rng = random.Random(seed)
    signer = LinkSigner(Keyring.parse(TEST_KEYS, "k1"), PUBLIC)
    tally = Tally()
    tasks: list[asyncio.Task[None]] = []
    total = int(rate * seconds)
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
        start = time.monotonic()
        for n in range(total):
            due = start + n / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            roll = rng.random()
            kind = "clean" if roll < 0.80 else ("view" if roll < 0.95 else "through")
            tasks.append(asyncio.create_task(one(http, proxies[n % len(proxies)], signer, n, kind, tally)))
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - start
    return tally, elapsed


async def count(db_url: str, sql: str) -> int:
    db = await open_database(db_url)
    try:
        row = await db.fetchone(sql)
        return int(row["n"]) if row else 0
    finally:
        await db.close()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=1000)[min(998, int(q * 1000) - 1)] if len(values) > 1 else values[0]


async def main(args: argparse.Namespace) -> int:
    schema = f"load_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(args.database_url)
    await admin.execute(f"CREATE SCHEMA {schema}")
    db_url = f"{args.database_url}{'&' if '?' in args.database_url else '?'}search_path={schema}"
    workdir = Path(tempfile.mkdtemp(prefix="safelinks-load-"))
    cluster = Replicas.on(workdir, db_url, public_url=PUBLIC)
    try:
        db = await open_database(db_url)
        verdicts = AdminVerdicts(db)
        for host in MALICIOUS_HOSTS:
            await verdicts.set(host, Verdict.MALICIOUS, threat_types=("Phish",), reason="load test")
        await db.close()
        proxies = list(await asyncio.gather(*(cluster.start("proxy") for _ in range(args.proxies))))
        await asyncio.gather(*(cluster.start("worker") for _ in range(args.workers)))
        print(f"{args.proxies} proxies, {args.workers} worker(s) on PostgreSQL schema {schema}; "
              f"{args.rate:g} clicks/s for {args.seconds:g} s", flush=True)
        tally, elapsed = await drive(proxies, args.rate, args.seconds, args.seed)
        answered_at = tally.last_answer
        stored = await count(db_url, "SELECT COUNT(DISTINCT report_id || ':' || CAST(is_clicked_through AS TEXT)) "
                                     "AS n FROM clicks")
        deadline = time.monotonic() + 120
        alerts = 0
        while time.monotonic() < deadline:
            alerts = await count(db_url, "SELECT COUNT(*) AS n FROM alerts")
            if alerts >= tally.alerts_expected:
                break
            await asyncio.sleep(0.2)
        lag = time.monotonic() - answered_at
        await asyncio.sleep(2.0)  # anything that would be raised twice has had time to be
        alerts = await count(db_url, "SELECT COUNT(*) AS n FROM alerts")
        distinct = await count(db_url, "SELECT COUNT(DISTINCT alert_key) AS n FROM alerts")
        requests = len(tally.latencies)
        summary = {
            "requests": requests, "seconds": round(elapsed, 2), "throughput_rps": round(requests / elapsed, 1),
            "p50_ms": round(percentile(tally.latencies, 0.50) * 1000, 2),
            "p99_ms": round(percentile(tally.latencies, 0.99) * 1000, 2),
            "max_ms": round(max(tally.latencies, default=0) * 1000, 2),
            "statuses": dict(sorted(tally.statuses.items())), "errors": len(tally.errors),
            "clicks_answered": tally.clicks_made, "clicks_stored": stored, "lost": tally.clicks_made - stored,
            "alerts_expected": tally.alerts_expected, "alerts_stored": alerts, "alerts_distinct": distinct,
            "alert_catch_up_s": round(lag, 2),
        }
        print(json.dumps(summary, indent=2))
        for error in tally.errors[:10]:
            print("error:", error, file=sys.stderr)
        ok = not tally.errors and stored == tally.clicks_made and alerts == distinct == tally.alerts_expected
        print("PASS" if ok else "FAIL", flush=True)
        return 0 if ok else 1
    finally:
        cluster.stop_all()
        if not args.keep:
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0, help="clicks per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--proxies", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    sys.exit(asyncio.run(main(parser.parse_args())))
