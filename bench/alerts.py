"""Benchmark of the alert engine: click-through → card latency, and a verdict flip over 1 M clicks.

Run: .venv/bin/python bench/alerts.py [--rate 100] [--seconds 10] [--clicks 1000000]

1. Click-through to card. The whole application (proxy, bot, alert engine, outbox) runs on
   loopback with the Teams stand-in from the tests. Users click through the warning page of a
   malicious link at ``--rate`` per second (each a GET of the wrapped link, then the "Continue
   anyway" POST). For each click-through we take the time from its answer until the stand-in
   receives a card of its incident that already counts its alert (cards of one incident are
   edited in place, and an edit waiting to be sent is replaced by a newer one, so a card may
   cover several clicks). Teams' own limit (about 7 messages a second per conversation) applies.
2. Verdict flip. ``--clicks`` clicks over 30 days on 10,000 hosts are stored; one host (1 % of the
   clicks) turns malicious; we time from the verdict change until every alert of the 48-hour
   look-back is stored (one per user and message), and check no older click was alerted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from safelinks.alerting import alerting_for
from safelinks.server import create_app
from shared.clicks import Workload, reversed_host
from shared.config import load_settings
from shared.outbox import Outbox
from shared.services import SERVICES, open_services
from shared.signing import LinkContext
from shared.store import open_database
from shared.verdicts.model import Verdict
from tests.conftest import BROWSER_UA, TEST_KEYS
from tests.teams_standin import CHANNEL_ID, TEAM_ID, TeamsStandIn, channel_post, sender_of, user

POLICIES = """
policies:
  - {name: Staff, EnableForInternalSenders: true, AllowClickThrough: true}
rules:
  - {name: Staff, policy: Staff, priority: 0, recipient_domain_is: [contoso.example]}
"""
_TOKEN = re.compile(r'name="token" value="([^"]+)"')
_COUNT = re.compile(r"incident #(\d+) \([a-zA-Z]+\), (\d+) related alert")


class TimedStandIn(TeamsStandIn):
    """The tests' Teams stand-in, noting when each call arrived."""

    arrivals: list[tuple[float, Any]]

    async def _record(self, request: web.Request, status: int, body: Any = None) -> None:
        if not hasattr(self, "arrivals"):
            self.arrivals = []
        self.arrivals.append((time.monotonic(), body))
        await super()._record(request, status, body)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def click_through_latency(rate: float, seconds: float) -> dict[str, float]:
    soc = user(7, name="Sam Analyst")
    standin = TimedStandIn(members={TEAM_ID: [soc], CHANNEL_ID: [soc]}).start()
    work = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    (work / "policies.yaml").write_text(POLICIES, encoding="utf-8")
    settings = load_settings(data_dir=work, signing_keys=TEST_KEYS, signing_key_id="k1",
                             policy_file=work / "policies.yaml", security_channel=CHANNEL_ID,
                             public_url="http://127.0.0.1:3978", log_level="warning", **standin.bot_settings())
    app = create_app(settings)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        services = app[SERVICES]
        await services.admin_verdicts.set("contoso-phish.com", Verdict.MALICIOUS, threat_types=("Phish",))
        services.verdicts.invalidate()
        activity = channel_post(standin.service_url, sender_of(soc), "morning", activity_id="1730462409999")
        await client.post("/api/messages", json=activity, headers={"Authorization": f"Bearer {standin.token()}"})
        count = int(rate * seconds)
        links = []
        for n in range(count):
            ctx = LinkContext(workload=Workload.TEAMS, tenant="t", conversation="19:chat@thread.v2",
                              message=f"m{n}", sender="mallory@fabrikam.example",
                              recipient=f"user{n}@contoso.example", recipient_id=f"aad-{n}")
            links.append(urlsplit(services.signer.wrap(f"https://login.contoso-phish.com/c/{n % 5}", ctx)))
        done: dict[str, float] = {}

        async def one(n: int, at: float) -> None:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            link = links[n]
            page = await client.get(f"{link.path}?{link.query}", headers={"User-Agent": BROWSER_UA},
                                    allow_redirects=False)
            token = _TOKEN.search(await page.text())
            assert token is not None, "no Continue anyway on the warning page"
            answer = await client.post("/v1/url/continue", data={"token": token.group(1)},
                                       headers={"User-Agent": BROWSER_UA, "Sec-Fetch-Site": "same-origin"},
                                       allow_redirects=False)
            assert answer.status == 303
            done[f"user{n}@contoso.example"] = time.monotonic()

        start = time.monotonic() + 0.2
        await asyncio.gather(*(one(n, start + n / rate) for n in range(count)))
        deadline = time.monotonic() + 120
        db = services.db
        while time.monotonic() < deadline:
            stored = await db.fetchone("SELECT COUNT(*) AS n FROM alerts WHERE rule_id = 'clicked-through'")
            waiting = await db.fetchone("SELECT COUNT(*) AS n FROM outbox WHERE kind = 'teams' AND status = 'pending'")
            if stored and stored["n"] >= count and waiting and waiting["n"] == 0:
                break
            await asyncio.sleep(0.1)
        rows = await db.fetchall("SELECT id, incident_id, rule_id, account_upn FROM alerts ORDER BY id")
        ordinal: dict[int, int] = {}
        position: dict[str, tuple[int, int]] = {}
        for r in rows:
            ordinal[r["incident_id"]] = ordinal.get(r["incident_id"], 0) + 1
            if r["rule_id"] == "clicked-through":
                position[r["account_upn"]] = (r["incident_id"], ordinal[r["incident_id"]])
        seen: list[tuple[float, int, int]] = []
        for at, body in standin.arrivals:
            match = _COUNT.search(json.dumps(body or {}))
            if match:
                seen.append((at, int(match.group(1)), int(match.group(2)) + 1))
        latencies = []
        for upn, finished in done.items():
            incident, n = position[upn]
            arrival = next((at for at, inc, shown in seen if inc == incident and shown >= n), None)
            if arrival is not None:
                latencies.append(max(0.0, arrival - finished))
        cards = len(seen)
        return {"click_throughs": float(count), "measured": float(len(latencies)), "cards_sent": float(cards),
                "p50_s": statistics.median(latencies), "p99_s": _pct(latencies, 0.99), "max_s": max(latencies)}
    finally:
        await client.close()
        standin.stop()


def _store_clicks(path: Path, total: int, flipped: str, now: datetime) -> int:
    """Bulk-load ``total`` clicks over 30 days; 1 % on ``flipped``. Returns the 48 h clicks on it."""
    rng = random.Random(7)
    hosts = [f"h{n}.contoso-files{n % 97}.com" for n in range(10_000)]
    span = 30 * 86400
    in_window = 0
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    sql = ("INSERT INTO clicks (report_id, timestamp, url, url_rhost, action_type, account_upn, workload, "
           "is_clicked_through, conversation_id, message_id, sender, verdict, verdict_source) "
           "VALUES (?, ?, ?, ?, 'ClickAllowed', ?, 'Teams', 0, 'c', ?, 's@contoso.example', 'clean', 'none')")
    batch = []
    for n in range(total):
        host = flipped if rng.random() < 0.01 else rng.choice(hosts)
        at = now.timestamp() - rng.random() * span
        if host == flipped and at >= now.timestamp() - 48 * 3600:
            in_window += 1
        batch.append((uuid.UUID(int=rng.getrandbits(128)).hex, at, f"https://{host}/doc/{n % 50}",
                      reversed_host(host), f"user{rng.randrange(5000)}@contoso.example", f"m{n}"))
        if len(batch) == 50_000:
            conn.executemany(sql, batch)
            batch.clear()
    conn.executemany(sql, batch)
    conn.commit()
    conn.close()
    return in_window


async def verdict_flip(total: int) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="bench-flip-"))
    settings = load_settings(data_dir=work, signing_keys=TEST_KEYS, signing_key_id="k1",
                             security_channel=CHANNEL_ID)
    db = await open_database(settings.effective_database_url)
    await db.close()
    now = datetime.now(UTC)
    flipped = "cdn.contoso-flip.com"
    started = time.perf_counter()
    expected = _store_clicks(work / "safelinks.db", total, flipped, now)
    load_s = time.perf_counter() - started
    async with open_services(settings, background=False) as services:
        system = alerting_for(services, Outbox(services.db), register_handlers=False)
        t0 = time.perf_counter()
        await services.admin_verdicts.set(flipped, Verdict.MALICIOUS, reason="bench", now=now.timestamp())
        created = await system.engine.process_changes()
        elapsed = time.perf_counter() - t0
        oldest = await services.db.fetchone("SELECT MIN(first_activity) AS t FROM alerts")
        events = await services.db.fetchone("SELECT COUNT(*) AS n FROM alert_events")
    assert oldest is None or oldest["t"] is None or oldest["t"] >= now.timestamp() - 48 * 3600
    return {"stored_clicks": float(total), "load_s": load_s, "clicks_in_window": float(expected),
            "alerts": float(created), "events": float(events["n"] if events else 0), "flip_to_stored_s": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clicks", type=int, default=1_000_000)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-flip", action="store_true")
    args = parser.parse_args()
    if not args.skip_latency:
        r = asyncio.run(click_through_latency(args.rate, args.seconds))
        print(f"click-through → card at {args.rate:.0f}/s for {args.seconds:.0f}s: "
              f"p50 {r['p50_s'] * 1000:.0f} ms, p99 {r['p99_s'] * 1000:.0f} ms, max {r['max_s'] * 1000:.0f} ms "
              f"({int(r['measured'])}/{int(r['click_throughs'])} measured, {int(r['cards_sent'])} card posts/edits; "
              f"target p99 ≤ 1000 ms)")
    if not args.skip_flip:
        f = asyncio.run(verdict_flip(args.clicks))
        print(f"verdict flip over {int(f['stored_clicks']):,} stored clicks (loaded in {f['load_s']:.1f} s): "
              f"{int(f['alerts'])} alerts for {int(f['clicks_in_window'])} clicks in the 48 h window stored in "
              f"{f['flip_to_stored_s']:.2f} s (target ≤ 2 s)")


if __name__ == "__main__":
    main()
