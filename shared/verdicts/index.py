"""The expression index: a million listed host/path expressions, looked up per click.

Entries and lookups are Safe Browsing expressions (`a.b.c/1/`, `b.c/`, `a.b.c/1/2.html?x=1`);
a URL matches an entry when one of its (at most 30) expressions equals the entry, so whole
hosts, path prefixes and exact URLs all fall out of equality on one set.

Layout: the 64-bit `hash()` of each expression in a sorted numpy array, a parallel array of
payloads (a small int code such as a threat-type id), and the expression strings themselves
packed into one UTF-8 blob with an offsets array, in hash order, so a diff can name what changed.
About 8 + 2 + 4 bytes per entry plus the string bytes; see `bench/verdict_index.py`.

Why `hash()`: CPython hashes `str` with SipHash-1-3 under a per-process random key
(PYTHONHASHSEED), 64 bits wide. It costs tens of nanoseconds where `hashlib` costs ~0.4 µs per
expression, which is what keeps 30 checks inside the budget; the random key means nobody can
craft a URL that collides with a listed entry. The hashes are therefore only meaningful inside
one process: an index is rebuilt from the feeds at start, never persisted. A
hash hit is confirmed against the stored string anyway (hits are rare, the check is ~0.3 µs), so
lookups are exact. A colliding probe, (expressions x entries) / 2**64 ≈ 1.6 x 10**-12 per URL at
30 x 10**6, only costs that check. Two different listed expressions share a hash with probability
about n**2 / 2**65 ≈ 2.7 x 10**-8 per million-entry build; the later one is then not indexed.

An index never changes after `build`: a feed update builds a new one and the owner swaps its
reference in one assignment, so a click never sees a half-built index.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from shared.errors import SafeLinksError

if TYPE_CHECKING:
    from shared.feeds.formats import FeedEntry

MAX_PAYLOAD = 0xFFFF
# Appended to the hash array so `searchsorted` never points past the end (saves a clip per call).
_SENTINEL = np.iinfo(np.int64).max
MAX_REJECT_EXAMPLES = 5


class ExpressionIndexError(SafeLinksError):
    """Base of the errors of the expression index."""


class IndexBuildError(ExpressionIndexError):
    """An index could not be built: an expression that is not a non-empty string, a bad payload."""


@dataclass(frozen=True)
class IndexDiff:
    """What a rebuild changed: new expressions, dropped ones, and ones whose payload moved."""

    added: list[tuple[str, int]]
    removed: list[tuple[str, int]]
    changed: list[tuple[str, int, int]]  # (expression, old payload, new payload)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass(frozen=True)
class ExpressionPairs:
    """Feed entries turned into index input, with the entries the expression seam refused."""

    pairs: list[tuple[str, int]]
    rejected: int
    rejected_examples: list[str]


class ExpressionIndex:
    """An immutable set of expressions, each with a payload; see the module notes."""

    __slots__ = ("_blob", "_hashes", "_offsets", "_payloads", "_size")

    def __init__(
        self, hashes: np.ndarray, payloads: np.ndarray, offsets: np.ndarray, blob: bytes
    ) -> None:
        # Built only by `build`/`empty`: hashes sorted and unique, each array in hash order.
        self._size = len(hashes)
        self._hashes = np.append(hashes, np.int64(_SENTINEL))
        self._payloads = np.append(payloads, np.uint16(0))
        self._offsets = offsets
        self._blob = blob
        for arr in (self._hashes, self._payloads, self._offsets):
            arr.flags.writeable = False

    @classmethod
    def empty(cls) -> ExpressionIndex:
        return cls(
            np.empty(0, np.int64), np.empty(0, np.uint16), np.zeros(1, np.uint32), b""
        )

    @classmethod
    def build(cls, pairs: Iterable[tuple[str, int]]) -> ExpressionIndex:
        """Index `(expression, payload)` pairs; where one expression repeats, the first wins."""
        exprs: list[str] = []
        codes = array("H")
        try:
            for expr, payload in pairs:
                exprs.append(expr)
                codes.append(payload)
        except (TypeError, OverflowError, ValueError) as exc:
            raise IndexBuildError(
                f"entry {len(exprs)}: payload must be an int in 0..{MAX_PAYLOAD} ({exc})"
            ) from exc
        if not exprs:
            return cls.empty()
        try:
            hashes = np.fromiter(map(hash, exprs), dtype=np.int64, count=len(exprs))
        except TypeError as exc:
            raise IndexBuildError(f"expressions must be strings ({exc})") from exc
        order = np.argsort(hashes, kind="stable")
        hashes = hashes[order]
        keep = np.empty(len(hashes), dtype=bool)
        keep[0] = True
        np.not_equal(hashes[1:], hashes[:-1], out=keep[1:])
        order = order[keep]
        blob, lengths = _pack(exprs, order)
        del exprs
        if not lengths.all():
            raise IndexBuildError("an expression is empty")
        total = int(lengths.sum())
        offsets = np.zeros(len(lengths) + 1, dtype=np.uint32 if total < 1 << 32 else np.int64)
        np.cumsum(lengths, out=offsets[1:])
        payloads = np.frombuffer(codes, dtype=np.uint16)[order]
        return cls(hashes[keep], payloads, offsets, blob)

    def __len__(self) -> int:
        return self._size

    def nbytes(self) -> int:
        """Bytes held by the arrays and the string blob (what the index costs in memory)."""
        return (
            self._hashes.nbytes + self._payloads.nbytes + self._offsets.nbytes + len(self._blob)
        )

    def lookup(self, expressions: Sequence[str]) -> int | None:
        """The payload of the first of `expressions` that is listed, or None."""
        found = self._first(expressions)
        return None if found is None else int(self._payloads[found[1]])

    def match(self, expressions: Sequence[str]) -> tuple[str, int] | None:
        """The first listed expression of `expressions` with its payload, or None."""
        found = self._first(expressions)
        if found is None:
            return None
        return expressions[found[0]], int(self._payloads[found[1]])

    def _first(self, expressions: Sequence[str]) -> tuple[int, int] | None:
        """(index in `expressions`, index in the arrays) of the first hit."""
        if not expressions or not self._size:
            return None
        query = np.fromiter(map(hash, expressions), dtype=np.int64, count=len(expressions))
        pos = self._hashes.searchsorted(query)
        hit = self._hashes.take(pos) == query
        first = int(hit.argmax())
        if not hit[first]:
            return None
        if self._holds(int(pos[first]), expressions[first]):
            return first, int(pos[first])
        # A 64-bit collision (or the sentinel): rare enough to walk the other hits one by one.
        for i in np.flatnonzero(hit[first + 1 :]).tolist():
            k = first + 1 + i
            if self._holds(int(pos[k]), expressions[k]):
                return k, int(pos[k])
        return None

    def _holds(self, i: int, expression: str) -> bool:
        return i < self._size and self.expression_at(i) == expression

    def __contains__(self, expression: object) -> bool:
        return isinstance(expression, str) and self._first((expression,)) is not None

    def expression_at(self, i: int) -> str:
        """The expression stored at array position `i` (hash order)."""
        return self._blob[int(self._offsets[i]) : int(self._offsets[i + 1])].decode()

    def items(self) -> Iterator[tuple[str, int]]:
        """Every (expression, payload), in hash order."""
        for i in range(self._size):
            yield self.expression_at(i), int(self._payloads[i])

    @staticmethod
    def diff(old: ExpressionIndex, new: ExpressionIndex) -> IndexDiff:
        """The expressions `new` adds, drops, or lists with another payload, relative to `old`."""
        old_hashes, new_hashes = old._hashes[: old._size], new._hashes[: new._size]
        in_old, old_pos = _locate(old_hashes, new_hashes)
        in_new, _ = _locate(new_hashes, old_hashes)
        added = np.flatnonzero(~in_old)
        removed = np.flatnonzero(~in_new)
        common = np.flatnonzero(in_old)
        moved = common[new._payloads[common] != old._payloads[old_pos[common]]]
        return IndexDiff(
            added=[(new.expression_at(i), int(new._payloads[i])) for i in added.tolist()],
            removed=[(old.expression_at(i), int(old._payloads[i])) for i in removed.tolist()],
            changed=[
                (
                    new.expression_at(i),
                    int(old._payloads[old_pos[i]]),
                    int(new._payloads[i]),
                )
                for i in moved.tolist()
            ],
        )


def _pack(exprs: list[str], order: np.ndarray) -> tuple[bytes, np.ndarray]:
    """The expressions in `order` as one UTF-8 blob, and the byte length of each.

    Canonical expressions are ASCII, so the usual path joins once and counts characters;
    building a million small `bytes` objects instead would leave tens of MB of allocator
    residue behind in the process.
    """
    try:
        ordered = [exprs[i] for i in order.tolist()]
        joined = "".join(ordered)
    except TypeError as exc:
        raise IndexBuildError(f"expressions must be strings ({exc})") from exc
    if joined.isascii():
        lengths = np.fromiter(map(len, ordered), dtype=np.int64, count=len(ordered))
        return joined.encode("ascii"), lengths
    encoded = [e.encode("utf-8", errors="surrogatepass") for e in ordered]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    return b"".join(encoded), lengths


def _locate(sorted_hashes: np.ndarray, probes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For sorted unique `probes`: whether each is in `sorted_hashes`, and where."""
    if len(sorted_hashes) == 0:
        return np.zeros(len(probes), dtype=bool), np.zeros(len(probes), dtype=np.intp)
    pos = sorted_hashes.searchsorted(probes)
    np.minimum(pos, len(sorted_hashes) - 1, out=pos)
    return sorted_hashes[pos] == probes, pos


def expression_pairs(
    entries: Iterable[FeedEntry],
    threat_codes: Mapping[str, int],
    to_expression: Callable[[str], str],
    *,
    fallback_code: int | None = None,
    rejects: tuple[type[Exception], ...] = (ValueError,),
) -> ExpressionPairs:
    """Turn feed entries into `(expression, payload)` pairs for `ExpressionIndex.build`.

    `to_expression` is the seam where a raw feed value (`evil.example`, `http://a.b/c/`)
    becomes its Safe Browsing expression; it signals an unusable value by raising one of
    `rejects`, which is counted, not fatal. A threat absent from `threat_codes` takes
    `fallback_code`, or raises `IndexBuildError` when there is none.
    """
    pairs: list[tuple[str, int]] = []
    rejected = 0
    examples: list[str] = []
    for entry in entries:
        code = threat_codes.get(entry.threat, fallback_code)
        if code is None:
            raise IndexBuildError(f"no payload code for threat {entry.threat!r}")
        try:
            pairs.append((to_expression(entry.value), code))
        except rejects as exc:
            rejected += 1
            if len(examples) < MAX_REJECT_EXAMPLES:
                examples.append(f"{entry.value[:160]!r}: {exc}")
    return ExpressionPairs(pairs, rejected, examples)
