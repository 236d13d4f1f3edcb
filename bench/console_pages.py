"""The console's list pages with a big click log: time per page, p50 and p99.

Fills a fresh SQLite store with ``--clicks`` clicks (default 1,000,000) spread over the last 7 days
and ``--alerts`` alerts, signs in with a one-time link and requests each page ``--rounds`` times in
turn through the application (aiohttp's test client on loopback, one request at a time: this is
the analyst's wait, not throughput). The pages' filters and paging run in the store; a slow page
here means a query that reads too many rows.

    python bench/console_pages.py [--clicks 1000000] [--alerts 20000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from console.sessions import SignInLinks  # noqa: E402
from safelinks.server import create_app  # noqa: E402
from shared.config import load_settings  # noqa: E402
from shared.services import SERVICES  # noqa: E402
from shared.store import open_database  # noqa: E402
from shared.store.alerts import ALERT_COLUMNS  # noqa: E402
from shared.store.clicks import INSERT_CLICK  # noqa: E402

KEYS = "bench:" + "42" * 32
ACTIONS = ["ClickAllowed"] * 90 + ["ClickBlocked"] * 6 + ["ClickBlockedByTenantPolicy"] * 3 + ["UrlScanInProgress"]
PAGES = [
    ("alerts, page 1", "/console/alerts"),
    ("alerts, page 100", "/console/alerts?page=100"),
    ("alerts, severity + status", "/console/alerts?severity=high&status=new"),
    ("alerts, user", "/console/alerts?user=user17@contoso.example"),
    ("alerts, title contains", "/console/alerts?title=clicked+through"),
    ("clicks, page 1", "/console/clicks"),
    ("clicks, page 200", "/console/clicks?page=200"),
    ("clicks, ActionType", "/console/clicks?action_type=ClickBlockedByTenantPolicy"),
    ("clicks, clicked through", "/console/clicks?clicked_through=true"),
    ("clicks, user", "/console/clicks?user=user17@contoso.example"),
    ("clicks, last 24h", "/console/clicks?since=24h"),
    ("overview", "/console/"),
]


async def fill(url: str, clicks: int, alerts: int) -> None:
    db = await open_database(url)
    rng = random.Random(7)
    now = time.time()
    batch = []
    # Clicks arrive in time order, so the log is stored in time order, as in service.
    for n, at in enumerate(sorted(now - rng.random() * 7 * 86400 for _ in range(clicks))):
        action = rng.choice(ACTIONS)
        user = f"user{rng.randrange(2000)}@contoso.example"
        host = f"site{rng.randrange(5000)}.example.com"
        batch.append((str(uuid.UUID(int=n)), at, f"https://{host}/p/{n % 97}", ".".join(reversed(host.split("."))),
                      action, user, None, "Teams", None, "", "", None, action == "ClickBlocked" and n % 3 == 0,
                      "[]", "t", None, None, "19:c@thread.v2", str(n), "alice@contoso.example", user, None, None,
                      "clean" if action == "ClickAllowed" else "malicious", "bench"))
        if len(batch) == 20_000:
            await db.executemany(INSERT_CLICK, batch)
            batch = []
    if batch:
        await db.executemany(INSERT_CLICK, batch)
    rows = []
    for n in range(alerts):
        at = now - rng.random() * 7 * 86400
        values = dict.fromkeys(ALERT_COLUMNS)
        values.update(alert_key=f"bench-{n}", rule_id="r", title=rng.choice(
            ["User clicked a malicious link in Teams chat", "A user clicked through to a potentially malicious URL"]),
            description="", recommended_actions="", severity=rng.choice(["high", "medium", "low", "informational"]),
            category="ThreatManagement", status=rng.choice(["new", "inProgress", "resolved"]),
            classification="unknown", determination="unknown", group_key="", created_at=at, updated_at=at,
            first_activity=at, last_activity=at, event_count=1, url=f"https://site{n % 5000}.example.com/",
            domain="example.com", account_upn=f"user{rng.randrange(2000)}@contoso.example", workload="Teams",
            report_id=str(n), evidence="[]", details="{}", comments="[]")
        rows.append([values[c] for c in ALERT_COLUMNS])
    await db.executemany(
        f"INSERT INTO alerts ({', '.join(ALERT_COLUMNS)}) VALUES ({', '.join('?' for _ in ALERT_COLUMNS)})", rows)
    await db.close()


async def measure(data_dir: Path, rounds: int) -> None:
    settings = load_settings(data_dir=data_dir, signing_keys=KEYS, signing_key_id="bench", feed_demo=False,
                             heuristics_enabled=False)
    app = create_app(settings, role="console")
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        token = await SignInLinks(app[SERVICES].db).issue(now=time.time())
        await client.post("/console/signin", data={"token": token}, allow_redirects=False)
        page = await (await client.get("/console/alerts")).text()
        assert re.search(r'name="csrf"', page), "not signed in"
        times: dict[str, list[float]] = {name: [] for name, _ in PAGES}
        for _ in range(rounds):
            for name, path in PAGES:
                started = time.perf_counter()
                response = await client.get(path)
                await response.read()
                times[name].append(time.perf_counter() - started)
                assert response.status == 200, (path, response.status)
        print(f"{'page':32} {'first':>9} {'p50':>9} {'p99':>9}")
        for name, found in times.items():
            ordered = sorted(found)
            p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
            print(f"{name:32} {found[0] * 1000:8.1f}ms {statistics.median(found) * 1000:8.1f}ms {p99 * 1000:8.1f}ms")
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clicks", type=int, default=1_000_000)
    parser.add_argument("--alerts", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="console-bench-") as tmp:
        data_dir = Path(tmp)
        started = time.perf_counter()
        asyncio.run(fill(f"sqlite:///{data_dir / 'safelinks.db'}", args.clicks, args.alerts))
        print(f"stored {args.clicks} clicks and {args.alerts} alerts in {time.perf_counter() - started:.1f}s")
        asyncio.run(measure(data_dir, args.rounds))


if __name__ == "__main__":
    main()
