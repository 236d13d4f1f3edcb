"""The click path against a bare aiohttp redirect, measured in the same run.

Starts four servers in turn on loopback — a bare aiohttp handler answering 302; the floor (our click
store's group-committed write of one row and our 302 with its protective headers, deciding nothing);
our proxy answering a clean click (signature check, policy, tenant list, verdict, durable click write,
302), and our proxy answering a warning page (malicious verdict, durable write, rendered page) — and loads each with the
same client and concurrency: wrk where installed, else an aiohttp load client. Server and client are
pinned to different cores where ``taskset`` exists. Prints req/s, p50 and p99 and the ratio ours/bare,
as the median of ``--rounds`` rounds.

    python bench/click_path.py [--seconds 10] [--connections 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BROWSER_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0 Safari/537.36")
KEYS = "bench:" + "42" * 32

BARE_SERVER = """
import sys
from aiohttp import web
try:
    import uvloop
    loop = uvloop.new_event_loop()
except ImportError:
    import asyncio
    loop = asyncio.new_event_loop()
async def redirect(request):
    return web.Response(status=302, headers={"Location": "https://example.com/some/path?a=1"})
app = web.Application()
app.router.add_get("/v1/url", redirect)
app.router.add_get("/healthz", lambda r: web.Response(text="ok"))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None, loop=loop)
"""

# The floor: our own store and headers with no decision at all. Each request writes a prepared click
# row (only its ReportId and time new) through the same group commit and INSERT the proxy uses and
# answers a 302 with the same protective headers. No click, however its decision is made and its row
# built, can be faster than this on the same machine.
FLOOR_SERVER = """
import asyncio, gc, sys, time
from datetime import UTC, datetime
from aiohttp import web
from proxy.pages import redirect
from shared.clicks import ActionType, Click, ReportIds, Workload
from shared.store.batch import BatchWriter
from shared.store.clicks import INSERT_CLICK, click_row
from shared.store import open_database
try:
    import uvloop
    loop = uvloop.new_event_loop()
except ImportError:
    loop = asyncio.new_event_loop()
TARGET = "https://example.com/some/path?a=1"
ids = ReportIds()
# A row as wide as a real click's, made once: each request only stamps a new ReportId and time.
ROW = list(click_row(Click(
    report_id="", timestamp=datetime.now(UTC), url=TARGET, action_type=ActionType.CLICK_ALLOWED,
    workload=Workload.TEAMS, verdict="clean", account_upn="alice@contoso.com", network_message_id="1700000000000",
    ip_address="127.0.0.0", url_chain=(TARGET,), tenant_id="00000000-0000-0000-0000-000000000001",
    conversation_id="19:bench@thread.v2", message_id="1700000000000", sender="bob@contoso.com",
    recipient="alice@contoso.com", user_agent=sys.argv[3], policy="Built-in protection", verdict_source="admin")))
async def store_ctx(app):
    db = await open_database("sqlite:///" + sys.argv[2])
    app["writer"] = BatchWriter(db, INSERT_CLICK)
    app["writer"].start()
    gc.collect()
    gc.freeze()
    yield
    await app["writer"].close()
    await db.close()
async def click(request):
    now = time.time()
    row = ROW.copy()
    row[0], row[1] = ids.new(now), now
    await request.app["writer"].write(row)
    return redirect(302, TARGET)
app = web.Application()
app.cleanup_ctx.append(store_ctx)
app.router.add_get("/v1/url", click)
app.router.add_get("/healthz", lambda r: web.Response(text="ok"))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None, loop=loop)
"""


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pin(core: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(core)]
    return []


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            with urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(url)


def run_wrk(url: str, seconds: int, connections: int) -> Result:
    cmd = [*pin(0), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
           "-H", f"User-Agent: {BROWSER_UA}", url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        assert m, out
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return float(m.group(1)) * scale

    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(g) for g in m.groups())
    return Result(rps, pct("50"), pct("99"), errors)


async def _aiohttp_load(url: str, seconds: int, connections: int) -> Result:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.monotonic() < stop:
            t = time.perf_counter()
            async with http.get(url, allow_redirects=False, headers={"User-Agent": BROWSER_UA}) as r:
                await r.read()
                if r.status >= 400:
                    errors += 1
            latencies.append(time.perf_counter() - t)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as http:
        await asyncio.gather(*(worker(http) for _ in range(connections)))
    latencies.sort()
    return Result(len(latencies) / seconds, latencies[len(latencies) // 2] * 1000,
                  latencies[int(len(latencies) * 0.99)] * 1000, errors)


def load(url: str, seconds: int, connections: int) -> Result:
    if shutil.which("wrk"):
        run_wrk(url, 2, connections)  # warm-up
        return run_wrk(url, seconds, connections)
    asyncio.run(_aiohttp_load(url, 2, connections))
    return asyncio.run(_aiohttp_load(url, seconds, connections))


def start_bare(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([*pin(1), sys.executable, "-c", BARE_SERVER, str(port)], stderr=subprocess.PIPE)
    wait_up(f"http://127.0.0.1:{port}/healthz", proc)
    return proc


def start_floor(port: int, data_dir: str) -> subprocess.Popen[bytes]:
    os.makedirs(data_dir, exist_ok=True)
    proc = subprocess.Popen([*pin(1), sys.executable, "-c", FLOOR_SERVER, str(port),
                             os.path.join(data_dir, "floor.db"), BROWSER_UA], stderr=subprocess.PIPE, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    wait_up(f"http://127.0.0.1:{port}/healthz", proc)
    return proc


def start_ours(port: int, data_dir: str) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    env = {**os.environ, "SAFELINKS_DATA_DIR": data_dir, "SAFELINKS_PORT": str(port), "SAFELINKS_SIGNING_KEYS": KEYS,
           "SAFELINKS_PUBLIC_URL": f"http://127.0.0.1:{port}", "SAFELINKS_LOG_LEVEL": "warning"}
    proc = subprocess.Popen([*pin(1), sys.executable, "-m", "safelinks", "serve", "--role", "proxy"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    wait_up(f"http://127.0.0.1:{port}/healthz", proc)
    return proc, env


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def links(port: int, env: dict[str, str]) -> tuple[str, str]:
    def cli(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "safelinks", *args], env=env, cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip()

    cli("verdict", "set", "https://malware.bench.example/payload", "malicious", "--threat", "malware")
    # The context the bot puts on a link in a Teams chat, so each stored click is a full row.
    context = ["--recipient", "alice@contoso.com", "--sender", "bob@contoso.com", "--tenant",
               "00000000-0000-0000-0000-000000000001", "--conversation", "19:bench@thread.v2", "--message",
               "1700000000000"]
    clean = cli("wrap", "https://example.com/some/path?a=1", *context)
    bad = cli("wrap", "https://malware.bench.example/payload", *context)
    return clean, bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    results: dict[str, list[Result]] = {"bare aiohttp 302": [], "floor: durable write + 302": [],
                                        "ours: clean click (302)": [], "ours: warning page": []}
    client = "wrk" if shutil.which("wrk") else "aiohttp load client"
    print(f"client: {client}, {args.connections} connections, {args.seconds}s x {args.rounds} rounds, "
          f"pinned: {'yes' if pin(0) else 'no'}", flush=True)
    if client != "wrk":
        print("note: a Python load client is slower than the servers it loads, so it limits every row alike and "
              "the ratios come out too high; install wrk (apt install wrk) for figures that mean something.",
              flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            port = free_port()
            bare = start_bare(port)
            try:
                bare_url = f"http://127.0.0.1:{port}/v1/url"
                results["bare aiohttp 302"].append(load(bare_url, args.seconds, args.connections))
            finally:
                stop(bare)
            port = free_port()
            floor = start_floor(port, os.path.join(tmp, f"floor{r}"))
            try:
                results["floor: durable write + 302"].append(load(f"http://127.0.0.1:{port}/v1/url", args.seconds,
                                                                  args.connections))
            finally:
                stop(floor)
            port = free_port()
            ours, env = start_ours(port, os.path.join(tmp, f"round{r}"))
            try:
                clean, bad = links(port, env)
                time.sleep(2.5)  # let the server pick up the verdict set by the CLI
                results["ours: clean click (302)"].append(load(clean, args.seconds, args.connections))
                results["ours: warning page"].append(load(bad, args.seconds, args.connections))
                import sqlite3

                stored = sqlite3.connect(os.path.join(tmp, f"round{r}", "safelinks.db")).execute(
                    "SELECT COUNT(*) FROM clicks").fetchone()[0]
            finally:
                stop(ours)
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1].rps:,.0f}/s" for k, v in results.items())
                  + f"; clicks stored {stored:,}", flush=True)
    base = statistics.median(x.rps for x in results["bare aiohttp 302"])
    print()
    print(f"{'server':28} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'ratio':>6}")
    for name, rs in results.items():
        rps = statistics.median(x.rps for x in rs)
        print(f"{name:28} {rps:>10,.0f} {statistics.median(x.p50_ms for x in rs):>8.2f} "
              f"{statistics.median(x.p99_ms for x in rs):>8.2f} {sum(x.errors for x in rs):>7} {rps / base:>6.2f}")
    print("\nratio = median req/s / median req/s of the bare aiohttp 302 (targets: clean >= 0.65, "
          "warning page >= 0.5; p99 <= 10 ms at 50 connections).\nThe floor writes each click through the same "
          "store and answers with the same headers but decides nothing: no click can beat it.")


if __name__ == "__main__":
    main()
