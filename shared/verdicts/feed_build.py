"""Turning a feed body into an expression index, away from the event loop.

Parsing a feed and canonicalising its entries costs several microseconds an entry: seconds of
CPU for a million. Done on the event loop (or in a thread, which holds the GIL most of the time)
that would stall clicks, so on Linux the build runs in a forked child process. A forked child
shares the parent's string-hash key, which the index's hashes depend on; the child proves it by
returning the hash of a probe string, and the index is rebuilt in a thread if that ever differs.
The child also computes the difference from the index it replaces, packed as newline-joined
strings so that carrying 100k changes back costs a copy, not 100k objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

from shared.feeds.errors import FeedError, FeedFormatError
from shared.feeds.formats import FeedFormat, parse_feed, unpack
from shared.urls import URLError, expression_of
from shared.verdicts.index import ExpressionIndex, ExpressionIndexError, expression_pairs

_PROBE = "safelinks hash probe"
# The only threat a plain list may not name; everything a feed says is malicious.
FALLBACK_THREAT = "malicious"


@dataclass(frozen=True)
class PackedChanges:
    """Expressions (newline-joined) with one payload code each."""

    expressions: str
    codes: bytes

    def __iter__(self) -> Iterator[tuple[str, int]]:
        if not self.expressions:
            return iter(())
        codes = array("H")
        codes.frombytes(self.codes)
        return zip(self.expressions.split("\n"), codes, strict=True)

    def __len__(self) -> int:
        return len(self.codes) // 2


@dataclass(frozen=True)
class BuiltFeed:
    """An index built from one body, with its account of bad lines and its difference from the old one."""

    index: ExpressionIndex
    threats: tuple[str, ...]  # payload code -> threat name
    entries: int
    bad_lines: int
    bad_examples: list[str]
    rejected: int
    rejected_examples: list[str]
    skipped: int
    added: PackedChanges
    removed: PackedChanges
    old_threats: tuple[str, ...]
    hash_probe: int = 0


def resolve_format(name: str, data: bytes) -> FeedFormat:
    """The parser for a CLI format name; `urlhaus` and `phishtank` are told apart by the body."""
    head = data[:4096].lstrip()
    if name == "urlhaus":
        is_csv = (head.startswith(b"#") and b"dateadded" in head) or head.startswith(b'"')
        return FeedFormat.URLHAUS_CSV if is_csv else FeedFormat.URLHAUS_TEXT
    if name == "phishtank":
        return FeedFormat.PHISHTANK_JSON if head.startswith(b"[") else FeedFormat.PHISHTANK_CSV
    try:
        return FeedFormat(name)
    except ValueError:
        raise FeedFormatError(f"unknown feed format {name!r}") from None


def _pack(items: list[tuple[str, int]]) -> PackedChanges:
    return PackedChanges("\n".join(e for e, _ in items), array("H", (c for _, c in items)).tobytes())


def build_feed(
    data: bytes,
    fmt_name: str,
    column: str | None,
    old: ExpressionIndex | None = None,
    old_threats: tuple[str, ...] = (),
) -> BuiltFeed:
    """Parse, canonicalise and index a body; raises FeedError when the body is not a usable feed."""
    body = unpack(data)
    fmt = resolve_format(fmt_name, body)
    parsed = parse_feed(body, fmt, column=column)
    codes: dict[str, int] = {t: i for i, t in enumerate(old_threats)}
    for entry in parsed.entries:
        if entry.threat not in codes:
            codes[entry.threat] = len(codes)
    pairs = expression_pairs(parsed.entries, codes, expression_of, rejects=(URLError, ValueError))
    if not pairs.pairs:
        raise FeedFormatError(f"no entry of the feed has a canonical form (e.g. {pairs.rejected_examples[:1]})")
    try:
        index = ExpressionIndex.build(pairs.pairs)
    except ExpressionIndexError as exc:
        raise FeedFormatError(str(exc)) from exc
    threats = tuple(codes)
    added = removed = PackedChanges("", b"")
    if old is not None:
        diff = ExpressionIndex.diff(old, index)
        # A threat that changed name is, for the log, a removal and an addition.
        added = _pack(diff.added + [(e, new) for e, _, new in diff.changed])
        removed = _pack(diff.removed)
    return BuiltFeed(index, threats, len(index), parsed.bad_lines, parsed.bad_examples, pairs.rejected,
                     pairs.rejected_examples, parsed.skipped, added, removed, old_threats, hash(_PROBE))


def _child(conn: multiprocessing.connection.Connection, args: tuple[object, ...]) -> None:
    try:
        result: object = build_feed(*args)  # type: ignore[arg-type]
    except FeedError as exc:
        result = exc
    except Exception as exc:  # anything else is reported to the parent, never lost in the child
        result = FeedFormatError(f"{type(exc).__name__}: {exc}")
    try:
        conn.send(result)
    finally:
        conn.close()


def _fork_available() -> bool:
    return hasattr(os, "fork") and "fork" in multiprocessing.get_all_start_methods()


async def build_off_loop(
    data: bytes,
    fmt_name: str,
    column: str | None,
    old: ExpressionIndex | None = None,
    old_threats: tuple[str, ...] = (),
    *,
    use_process: bool = True,
) -> BuiltFeed:
    """`build_feed` in a forked child (or a thread where fork is unavailable)."""
    args = (data, fmt_name, column, old, old_threats)
    if not (use_process and _fork_available()):
        return await asyncio.to_thread(build_feed, *args)
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    # The child inherits `args` through fork: nothing is pickled on the way in.
    proc = ctx.Process(target=_child, args=(sender, args), daemon=True, name="feed-build")
    proc.start()
    sender.close()
    try:
        result = await asyncio.to_thread(_receive, receiver)
    finally:
        receiver.close()
        await asyncio.to_thread(proc.join, 5.0)
        if proc.is_alive():
            proc.kill()
    if isinstance(result, BaseException):
        raise result
    if not isinstance(result, BuiltFeed):
        raise FeedFormatError(f"feed build process died (exit code {proc.exitcode})")
    if result.hash_probe != hash(_PROBE):
        # Not a fork of this interpreter after all: its hashes mean nothing here.
        return await asyncio.to_thread(build_feed, *args)
    return result


def _receive(conn: multiprocessing.connection.Connection) -> object:
    with contextlib.suppress(EOFError):
        return conn.recv()
    return None
