"""Adversarial inputs against link extraction and list matching: the time per KB must stay flat.

Each case is the worst input we could construct for one step that reads what a message or a link
carries: the shapes that made the old patterns backtrack (``&lt;a href=`` repeated, ``<a `` repeated,
a path of one long name), unterminated tags and quotes, long runs of dots, schemes and closing
brackets, and messages packed with candidates that each reach the URL parser. Every case runs at
sizes doubling from 16 KB to 256 KB (the list matching cases from 512 bytes to 8 KB, the longest
URL the system accepts) and the table prints the time per KB at each size and the ratio of the
largest size's to the smallest's: linear work gives a ratio near 1, quadratic work about 16 or 32.

Run: ``python bench/adversarial.py`` (exits non-zero when a ratio is over ``--limit``, default 3).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from shared.urllists.tenant_list import TablAction
from shared.urllists.tenant_list_entries import TablEntry, TablIndex
from shared.urls import extract_urls

Case = tuple[str, Callable[[int], Callable[[], object]], tuple[int, ...]]

_KB = 1024
_MESSAGE_SIZES = (16 * _KB, 32 * _KB, 64 * _KB, 128 * _KB, 256 * _KB)
_URL_SIZES = (512, _KB, 2 * _KB, 4 * _KB, 8 * _KB - 64)


def _repeat(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def _extract(unit: str, *, html: bool, head: str = "") -> Callable[[int], Callable[[], object]]:
    def make(size: int) -> Callable[[], object]:
        text = head + _repeat(unit, size - len(head))
        return lambda: extract_urls(text, html=html)

    return make


def _distinct_links(size: int) -> Callable[[], object]:
    # Every candidate distinct, so each one reaches the URL parser.
    text = " ".join(f"x{i}.co" for i in range(size // 7))[:size]
    return lambda: extract_urls(text)


_NOW = datetime(2026, 1, 1, tzinfo=UTC)
_INDEX = TablIndex([
    TablEntry("contoso.com", TablAction.BLOCK, _NOW),
    TablEntry("~fabrikam.com~", TablAction.BLOCK, _NOW),
    TablEntry("example.org/a", TablAction.ALLOW, _NOW),
])


def _tabl(path_unit: str) -> Callable[[int], Callable[[], object]]:
    def make(size: int) -> Callable[[], object]:
        url = "http://example.org/" + _repeat(path_unit, size)
        return lambda: _INDEX.match(url, _NOW)

    return make


CASES: list[Case] = [
    ("html: '&lt;a href=' repeated", _extract("&lt;a href=", html=True), _MESSAGE_SIZES),
    ("html: '<a ' repeated", _extract("<a ", html=True), _MESSAGE_SIZES),
    ("html: '<a href=' repeated", _extract("<a href=", html=True), _MESSAGE_SIZES),
    ("html: '<a href=\"' unterminated", _extract('x <a href="', html=True), _MESSAGE_SIZES),
    ("html: '<a b=c ' never closed", _extract("<a b=c ", html=True), _MESSAGE_SIZES),
    ("html: '<!' and '</' runs", _extract("<!</<?</ ", html=True), _MESSAGE_SIZES),
    ("html: '<at>' never closed", _extract("<at>www.a.co ", html=True), _MESSAGE_SIZES),
    ("html: 64 links per KB", _extract('<a href="https://a.example.com/x">t</a> ', html=True), _MESSAGE_SIZES),
    ("text: 'a.' repeated", _extract("a.", html=False), _MESSAGE_SIZES),
    ("text: 'a' (one word)", _extract("a", html=False), _MESSAGE_SIZES),
    ("text: 'http://' repeated", _extract("http://", html=False), _MESSAGE_SIZES),
    ("text: 'www.a' repeated", _extract("www.a", html=False), _MESSAGE_SIZES),
    ("text: 'a@a.' repeated", _extract("a@a.", html=False), _MESSAGE_SIZES),
    ("text: 'a.co:1' repeated", _extract("a.co:1", html=False), _MESSAGE_SIZES),
    ("text: 'http://a.co/' then ')' to the end", _extract(")", html=False, head="http://a.co/"), _MESSAGE_SIZES),
    ("text: 'a.co ' (a link per 5 bytes)", _extract("a.co ", html=False), _MESSAGE_SIZES),
    ("text: 'https://a.co/ ' repeated", _extract("https://a.co/ ", html=False), _MESSAGE_SIZES),
    ("text: distinct links 'x1.co x2.co …'", _distinct_links, _MESSAGE_SIZES),
    ("list: path of one long name", _tabl("a"), _URL_SIZES),
    ("list: path 'a.' repeated", _tabl("a."), _URL_SIZES),
    ("list: path 'contoso.com/' repeated", _tabl("contoso.com/"), _URL_SIZES),
    ("list: path '?fabrikam.com&' repeated", _tabl("q=fabrikam.com&"), _URL_SIZES),
]


def _seconds(run: Callable[[], object], repeats: int = 5) -> float:
    """Best of ``repeats`` runs, with the cyclic garbage collector paused as timeit does (its passes
    over a growing heap would add noise that is not the step's own work)."""
    best = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - started)
    finally:
        gc.enable()
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--limit", type=float, default=3.0, help="largest allowed ratio (default 3)")
    args = parser.parse_args(argv)
    worst = 0.0
    print("case".ljust(44) + "µs per KB at each size (KB:µs)".ljust(70) + "ratio largest/smallest")
    for name, make, sizes in CASES:
        per_kb = [_seconds(make(size)) * 1e6 / (size / _KB) for size in sizes]
        ratio = per_kb[-1] / per_kb[0]
        worst = max(worst, ratio)
        cells = "  ".join(f"{size / _KB:g}:{value:,.1f}" for size, value in zip(sizes, per_kb, strict=True))
        print(f"{name:44}{cells:70}{ratio:.2f}")
    print(f"worst ratio {worst:.2f} (limit {args.limit:g})")
    return 0 if worst <= args.limit else 1


if __name__ == "__main__":
    sys.exit(main())
