"""Benchmark of the expression index: build time, memory and lookup latency at 1M entries.

Run: .venv/bin/python bench/verdict_index.py [--entries N] [--urls N]

Entries are synthetic Safe Browsing expressions (40 % whole hosts `h/`, 30 % path prefixes
`h/a/b/`, 30 % exact URLs `h/a/b.html?q=1`), generated lazily from a fixed seed so only the
index itself stays in memory. Queries are expression lists as a URL expands to them (host
suffixes x path prefixes, at most 30), 10 % of them containing a listed expression. The
expansion here is a local stand-in for `shared.urls.expressions`; its cost is reported apart.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import random
import string
import time
from collections.abc import Iterator

import psutil

from shared.verdicts.index import ExpressionIndex

TLDS = ("example", "test", "invalid", "example.com", "co.test")
ALPHABET = string.ascii_lowercase + string.digits


def _label(rng: random.Random, lo: int = 4, hi: int = 12) -> str:
    return "".join(rng.choices(ALPHABET, k=rng.randint(lo, hi)))


def _host(rng: random.Random) -> str:
    labels = [_label(rng) for _ in range(rng.randint(1, 3))]
    return ".".join([*labels, rng.choice(TLDS)])


def _entry(rng: random.Random) -> str:
    host = _host(rng)
    kind = rng.random()
    if kind < 0.4:
        return f"{host}/"
    dirs = "/".join(_label(rng, 2, 8) for _ in range(rng.randint(1, 3)))
    if kind < 0.7:
        return f"{host}/{dirs}/"
    return f"{host}/{dirs}/{_label(rng)}.html?id={rng.randint(1, 99999)}"


def entries(n: int, seed: int) -> Iterator[tuple[str, int]]:
    rng = random.Random(seed)
    for _ in range(n):
        yield _entry(rng), rng.randint(1, 4)


def expand(host: str, path: str, query: str) -> list[str]:
    """Safe Browsing expressions: ≤5 host suffixes x ≤6 path prefixes."""
    labels = host.split(".")
    hosts = [host] + [".".join(labels[-k:]) for k in range(min(len(labels) - 1, 5), 1, -1)]
    hosts = list(dict.fromkeys(hosts[:5]))
    parts = path.split("/")[1:-1]
    paths = [path + "?" + query] if query else []
    paths.append(path)
    prefix = "/"
    prefixes = [prefix]
    for part in parts[:3]:
        prefix += part + "/"
        prefixes.append(prefix)
    paths += [p for p in prefixes if p not in paths]
    return [h + p for h in hosts for p in paths[:6]]


def query_urls(n: int, seed: int, listed: list[str]) -> list[tuple[str, str, str]]:
    """URLs as (host, path, query); one in ten built around a listed expression."""
    rng = random.Random(seed)
    urls = []
    for i in range(n):
        if i % 10 == 0:
            expr = rng.choice(listed)
            host, _, rest = expr.partition("/")
            path, _, query = ("/" + rest).partition("?")
            if path.endswith("/"):
                path += _label(rng) + ".php"
            urls.append((f"{_label(rng)}.{host}", path, query))
        else:
            dirs = "/".join(_label(rng, 2, 8) for _ in range(rng.randint(0, 4)))
            path = f"/{dirs}/{_label(rng)}.html" if dirs else f"/{_label(rng)}.html"
            urls.append((_host(rng), path, f"a={rng.randint(1, 9)}" if rng.random() < 0.5 else ""))
    return urls


def worst_case(n: int, seed: int) -> list[list[str]]:
    """Misses that expand to the full 30 expressions (5 hosts x 6 paths)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        host = ".".join([_label(rng) for _ in range(5)] + ["example"])
        path = "/" + "/".join(_label(rng, 2, 6) for _ in range(4)) + "/x.html"
        out.append(expand(host, path, "q=1"))
    return out


def percentiles(samples_ns: list[int]) -> tuple[float, float, float]:
    samples_ns.sort()
    n = len(samples_ns)
    return (
        samples_ns[n // 2] / 1000,
        samples_ns[int(n * 0.99)] / 1000,
        sum(samples_ns) / n / 1000,
    )


def time_lookups(index: ExpressionIndex, lists: list[list[str]]) -> tuple[list[int], int]:
    clock = time.perf_counter_ns
    samples = []
    hits = 0
    lookup = index.lookup
    for exprs in lists:
        t0 = clock()
        found = lookup(exprs)
        samples.append(clock() - t0)
        hits += found is not None
    return samples, hits


def _trimmed_rss(proc: psutil.Process) -> int:
    """RSS once glibc has handed freed heap back (the build's temporaries), where glibc exists."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return int(proc.memory_info().rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--urls", type=int, default=100_000)
    args = parser.parse_args()
    proc = psutil.Process()

    gc.collect()
    rss0 = proc.memory_info().rss
    t0 = time.perf_counter()
    index = ExpressionIndex.build(entries(args.entries, seed=1))
    build_s = time.perf_counter() - t0
    gc.collect()
    rss_added = proc.memory_info().rss - rss0
    rss_trimmed = _trimmed_rss(proc) - rss0

    # Build time without the synthetic generation: materialise first, then time the build.
    t0 = time.perf_counter()
    materialised = list(entries(args.entries, seed=1))
    generate_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ExpressionIndex.build(materialised)
    build_only_s = time.perf_counter() - t0
    del materialised
    gc.collect()

    # Re-generate a sample of listed expressions for the planted hits (same seed, same stream).
    sample_gen = entries(args.entries, seed=1)
    listed = [next(sample_gen)[0] for _ in range(min(args.entries, 50_000))]
    urls = query_urls(args.urls, seed=2, listed=listed)

    t0 = time.perf_counter()
    lists = [expand(h, p, q) for h, p, q in urls]
    expand_us = (time.perf_counter() - t0) / len(urls) * 1e6
    mean_exprs = sum(map(len, lists)) / len(lists)

    time_lookups(index, lists[:5000])  # warm-up
    mix, hits = time_lookups(index, lists)
    worst, worst_hits = time_lookups(index, worst_case(20_000, seed=3))
    mix_p = percentiles(mix)
    worst_p = percentiles(worst)

    # A feed update: rebuild with 1 % of entries replaced, then diff.
    t0 = time.perf_counter()
    changed = ExpressionIndex.build(
        (e, p) if i % 100 else (f"new{i}.example/", p)
        for i, (e, p) in enumerate(entries(args.entries, seed=1))
    )
    rebuild_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    delta = ExpressionIndex.diff(index, changed)
    diff_s = time.perf_counter() - t0

    rows = [
        ("entries (distinct)", f"{len(index):,}"),
        ("generate + build (streamed)", f"{build_s:.2f} s"),
        ("generation alone / build alone", f"{generate_s:.2f} s / {build_only_s:.2f} s"),
        ("RSS added after build", f"{rss_added / 1e6:.1f} MB"),
        ("RSS added after malloc_trim(0)", f"{rss_trimmed / 1e6:.1f} MB"),
        ("index arrays + strings", f"{index.nbytes() / 1e6:.1f} MB"),
        ("query URLs / planted hits / found", f"{len(lists):,} / {len(lists) // 10:,} / {hits:,}"),
        ("expressions per URL (mean)", f"{mean_exprs:.1f}"),
        ("expansion stand-in, per URL", f"{expand_us:.2f} µs"),
        ("lookup mix p50 / p99 / mean", "{:.2f} / {:.2f} / {:.2f} µs".format(*mix_p)),
        ("lookup worst (30 expr, miss) p50 / p99", f"{worst_p[0]:.2f} / {worst_p[1]:.2f} µs"),
        ("worst-case hits (short random hosts)", f"{worst_hits}"),
        ("rebuild (1 % replaced)", f"{rebuild_s:.2f} s"),
        ("diff", f"{diff_s * 1000:.0f} ms (+{len(delta.added):,} / -{len(delta.removed):,})"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 28}")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
