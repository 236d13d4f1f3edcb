"""Benchmark of the verdict sources: a million-entry feed built, looked up, and reloaded under clicks.

Run: .venv/bin/python bench/verdicts.py [--entries N] [--lookups N] [--clicks N]

1. Build: a plain feed of N lines (40 % domains, 30 % path prefixes, 30 % exact URLs) parsed,
   canonicalised and indexed, as the updater does it (in a forked child), with the index's bytes
   and the growth of this process's RSS once it holds the index.
2. Lookup: the feed source answering canonical URLs (their ≤ 30 expressions given, as the engine
   gives them), p50 and p99 in µs; and the same including canonicalisation and expansion.
3. Clicks: p99 of clicks through the proxy (a real server on loopback, SQLite) while the
   feed is re-imported with 1 % of its entries changed (the difference logged as verdict
   changes), against the same number of clicks without a reload. Target: ratio ≤ 2.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import string
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from aiohttp.test_utils import TestServer

from safelinks.server import create_app
from shared.clicks import Workload
from shared.config import load_settings
from shared.metrics import Registry
from shared.services import SERVICES
from shared.signing import LinkContext
from shared.store.feeds import FeedSpec
from shared.urls import canonicalize, expressions
from shared.verdicts.feed_build import build_off_loop
from shared.verdicts.feeds import FeedProvider, LoadedFeed

ALPHABET = string.ascii_lowercase + string.digits
TLDS = ("com", "net", "org", "info", "xyz", "co.uk")
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


def _label(rng: random.Random, lo: int = 4, hi: int = 12) -> str:
    return "".join(rng.choices(ALPHABET, k=rng.randint(lo, hi)))


def _entry(rng: random.Random) -> str:
    host = ".".join([*(_label(rng) for _ in range(rng.randint(1, 3))), rng.choice(TLDS)])
    kind = rng.random()
    if kind < 0.4:
        return host
    dirs = "/".join(_label(rng, 2, 8) for _ in range(rng.randint(1, 3)))
    if kind < 0.7:
        return f"http://{host}/{dirs}/"
    return f"https://{host}/{dirs}/{_label(rng)}.html?id={rng.randint(1, 99999)}"


def feed_lines(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [_entry(rng) for _ in range(n)]


def _url_for(entry: str) -> str:
    """A URL the entry covers."""
    if "://" not in entry:
        return f"https://www.{entry}/some/page.html"
    if entry.endswith("/"):
        return entry + "deeper/file.php?a=1"
    return entry


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench_build(body: bytes) -> tuple[LoadedFeed, dict[str, float]]:
    gc.collect()
    rss0 = psutil.Process().memory_info().rss
    started = time.perf_counter()
    built = await build_off_loop(body, "plain", None)
    seconds = time.perf_counter() - started
    gc.collect()
    rss1 = psutil.Process().memory_info().rss
    loaded = LoadedFeed.of("bench", built, version=1, sha256="", loaded_at=_now(), fetched_at=None)
    return loaded, {"build_s": seconds, "index_mb": built.index.nbytes() / 1e6, "rss_growth_mb": (rss1 - rss0) / 1e6,
                    "entries": float(len(built.index))}


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def bench_lookup(loaded: LoadedFeed, lines: list[str], n: int) -> dict[str, float]:
    provider = FeedProvider(Registry(), _now)
    provider.install(loaded)
    rng = random.Random(7)
    urls = []
    for i in range(n):
        if i % 10 == 0:
            urls.append(_url_for(rng.choice(lines)))
        else:
            urls.append(f"https://{_label(rng)}.{_label(rng)}.com/{_label(rng)}/{_label(rng)}.html?q={i}")
    canon = [canonicalize(u) for u in urls]
    exprs = [expressions(c) for c in canon]
    times: list[float] = []
    hits = 0
    for c, e in zip(canon, exprs, strict=True):
        t0 = time.perf_counter_ns()
        found = await provider.check(c, e)
        times.append((time.perf_counter_ns() - t0) / 1000)
        hits += found is not None
    full: list[float] = []
    for u in urls[: n // 4]:
        t0 = time.perf_counter_ns()
        c = canonicalize(u)
        await provider.check(c, expressions(c))
        full.append((time.perf_counter_ns() - t0) / 1000)
    return {"lookup_p50_us": pct(times, 0.5), "lookup_p99_us": pct(times, 0.99), "hits": hits,
            "with_canonical_p50_us": pct(full, 0.5), "with_canonical_p99_us": pct(full, 0.99),
            "mean_exprs": statistics.mean(len(e) for e in exprs)}


async def _clicks(session: aiohttp.ClientSession, links: list[str], until: asyncio.Event | None,
                  minimum: int, concurrency: int = 4) -> list[float]:
    times: list[float] = []
    queue = iter(links)

    async def worker() -> None:
        for link in queue:
            if until is not None and until.is_set() and len(times) >= minimum:
                return
            t0 = time.perf_counter()
            async with session.get(link, allow_redirects=False, headers={"User-Agent": UA}) as resp:
                await resp.read()
            times.append((time.perf_counter() - t0) * 1000)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return times


async def bench_clicks(tmp: Path, body: bytes, lines: list[str], n_clicks: int) -> dict[str, float]:
    feed = tmp / "big.txt"
    feed.write_bytes(body)
    next_version = tmp / "big-v2.txt"
    next_version.write_bytes(changed_body(body, 5))
    settings = load_settings(data_dir=tmp / "var", signing_keys="k1:" + "11" * 32, signing_key_id="k1",
                             public_url="http://127.0.0.1:1")
    # Role proxy: the feed update is driven from here, in the serving process, as the worker loop would;
    # the alert engine (which role `all` would also run) is measured by its own benchmark.
    server = TestServer(create_app(settings, role="proxy"), host="127.0.0.1")
    await server.start_server()
    try:
        services = server.app[SERVICES]
        assert services.sources is not None
        updater = services.sources.updater
        await updater.registry.add(FeedSpec("big", str(feed), "plain"), now=time.time())
        t0 = time.perf_counter()
        first = await updater.update("big")
        import_s = time.perf_counter() - t0
        rng = random.Random(11)

        def links(n: int) -> list[str]:
            out = []
            for i in range(n):
                url = _url_for(rng.choice(lines)) if i % 10 == 0 else f"https://{_label(rng)}.example.com/{i}"
                ctx = LinkContext(workload=Workload.TEAMS, recipient="alice@contoso.com", recipient_id="aad-alice",
                                  tenant="t", conversation="19:c@thread.v2", message=str(i), sender="bob@contoso.com")
                out.append(str(server.make_url("")).rstrip("/")
                           + services.signer.wrap(url, ctx).removeprefix(settings.public_url))
            return out

        async with aiohttp.ClientSession() as session:
            await _clicks(session, links(200), None, 0)  # warm up
            baseline = await _clicks(session, links(n_clicks), None, 0)
            os.replace(next_version, feed)
            done = asyncio.Event()

            async def reload() -> Any:
                try:
                    return await updater.update("big", force=True)
                finally:
                    done.set()

            t0 = time.perf_counter()
            task = asyncio.create_task(reload())
            during = await _clicks(session, links(n_clicks * 50), done, n_clicks)
            outcome = await task
            reload_s = time.perf_counter() - t0
    finally:
        await server.close()
    return {"import_s": import_s, "import_entries": first.entries, "reload_s": reload_s,
            "reload_added": outcome.added, "reload_removed": outcome.removed,
            "clicks_baseline": len(baseline), "clicks_during": len(during),
            "click_p50_ms": pct(baseline, 0.5), "click_p99_ms": pct(baseline, 0.99),
            "reload_click_p50_ms": pct(during, 0.5), "reload_click_p99_ms": pct(during, 0.99),
            "p99_ratio": pct(during, 0.99) / pct(baseline, 0.99)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=100_000)
    parser.add_argument("--clicks", type=int, default=1000)
    args = parser.parse_args()
    lines = feed_lines(args.entries, 1)
    body = ("\n".join(lines) + "\n").encode()
    # The server under test holds no million Python objects, so neither does the bench while it measures.
    sample = random.Random(3).sample(lines, min(len(lines), 20_000))
    del lines
    gc.collect()
    print(f"feed: {args.entries:,} lines, {len(body) / 1e6:.1f} MB; CPUs: {os.cpu_count()}")
    loaded, build = await bench_build(body)
    print(f"build (parse + canonicalise + index, forked child): {build['build_s']:.1f} s; index "
          f"{build['index_mb']:.1f} MB; RSS growth holding it {build['rss_growth_mb']:.1f} MB; "
          f"{int(build['entries']):,} distinct expressions")
    look = await bench_lookup(loaded, sample, args.lookups)
    print(f"lookup (feed source, expressions given, mean {look['mean_exprs']:.1f} per URL): "
          f"p50 {look['lookup_p50_us']:.1f} µs, p99 {look['lookup_p99_us']:.1f} µs ({int(look['hits'])} hits)")
    print(f"lookup incl. canonicalisation and expansion: p50 {look['with_canonical_p50_us']:.1f} µs, "
          f"p99 {look['with_canonical_p99_us']:.1f} µs")
    del loaded
    gc.collect()
    with tempfile.TemporaryDirectory() as tmp:
        clicks = await bench_clicks(Path(tmp), body, sample, args.clicks)
    print(f"proxy: first import {clicks['import_s']:.1f} s ({int(clicks['import_entries']):,} entries, every one "
          f"logged as a verdict change); reload with 1 % changed {clicks['reload_s']:.1f} s "
          f"(+{int(clicks['reload_added']):,} -{int(clicks['reload_removed']):,})")
    print(f"clicks without reload ({int(clicks['clicks_baseline'])}): p50 {clicks['click_p50_ms']:.2f} ms, "
          f"p99 {clicks['click_p99_ms']:.2f} ms")
    print(f"clicks during reload ({int(clicks['clicks_during'])}): p50 {clicks['reload_click_p50_ms']:.2f} ms, "
          f"p99 {clicks['reload_click_p99_ms']:.2f} ms; p99 ratio {clicks['p99_ratio']:.2f} (target <= 2)")


def changed_body(body: bytes, seed: int) -> bytes:
    """The feed with every hundredth line replaced by a new entry."""
    rng = random.Random(seed)
    rows = body.split(b"\n")
    for i in range(0, len(rows) - 1, 100):
        rows[i] = _entry(rng).encode()
    out = b"\n".join(rows)
    del rows
    gc.collect()
    return out


if __name__ == "__main__":
    asyncio.run(main())
