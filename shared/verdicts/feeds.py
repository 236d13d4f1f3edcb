"""The feed source: every configured threat feed as one immutable index, looked up per click.

Each feed has its own `ExpressionIndex`; an update builds a new one and swaps the mapping of
feeds in one assignment, so a click sees either the old set or the new one, never half of
either. A URL listed by any feed is malicious, with the feed named as the source and the listed
expression as the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.metrics import Labels, Registry
from shared.store.feeds import FeedRecord
from shared.verdicts.feed_build import BuiltFeed
from shared.verdicts.index import ExpressionIndex
from shared.verdicts.model import Verdict, VerdictResult

HELD_PREFIX = "held: "  # how a held update's reason starts (shared/verdicts/feed_updater.py)

NAME = "feeds"
DETECTION_METHOD = "URL malicious reputation"
DEMO_FEED = "demo"


@dataclass(frozen=True)
class LoadedFeed:
    """One feed's index as this process holds it."""

    name: str
    index: ExpressionIndex
    threats: tuple[str, ...]
    version: int
    sha256: str
    loaded_at: datetime
    fetched_at: datetime | None

    @classmethod
    def of(cls, name: str, built: BuiltFeed, *, version: int, sha256: str, loaded_at: datetime,
           fetched_at: datetime | None) -> LoadedFeed:
        return cls(name, built.index, built.threats, version, sha256, loaded_at, fetched_at)


def source_name(feed: str) -> str:
    return f"feed:{feed}"


class FeedProvider:
    """Tier 1: a URL listed by a feed is malicious."""

    name = NAME
    tier = 1

    def __init__(self, metrics: Registry, clock: Callable[[], datetime]) -> None:
        self._feeds: dict[str, LoadedFeed] = {}
        self._records: dict[str, FeedRecord] = {}
        self._clock = clock
        self._local_errors: dict[str, str] = {}
        self._hits = metrics.counter("safelinks_feed_hits_total", "Clicks whose URL a feed lists, per feed.")
        self._queries = metrics.counter("safelinks_feed_queries_total", "URLs looked up in the feed indexes.")
        metrics.gauge("safelinks_feed_entries", "Expressions in each loaded feed index.", self._entries_gauge)
        metrics.gauge("safelinks_feed_age_seconds", "Seconds since each feed was last fetched successfully.",
                      self._age_gauge)
        metrics.gauge("safelinks_feed_update_lag_seconds",
                      "Seconds each feed is overdue: time past its last success plus its interval.", self._lag_gauge)
        metrics.gauge("safelinks_feed_bad_lines", "Lines of each feed's last good body that could not be used.",
                      self._bad_gauge)

    @property
    def enabled(self) -> bool:
        return bool(self._feeds)

    async def check(self, url: str, expressions: list[str]) -> VerdictResult | None:
        self._queries.inc()
        for feed in self._feeds.values():
            hit = feed.index.match(expressions)
            if hit is None:
                continue
            expr, code = hit
            threat = feed.threats[code] if code < len(feed.threats) else "malicious"
            self._hits.inc(feed=feed.name)
            return VerdictResult(
                verdict=Verdict.MALICIOUS,
                source=source_name(feed.name),
                threat_types=(threat,),
                detection_method=DETECTION_METHOD,
                reasons=(f"listed by feed {feed.name} as {threat}: {expr}",),
                at=feed.fetched_at,
                expression=expr,
            )
        return None

    async def update(self) -> None:
        """Updates are the updater's job (it runs in the worker role); nothing to do per process here."""

    # The updater's side.

    def loaded(self, name: str) -> LoadedFeed | None:
        return self._feeds.get(name)

    def names(self) -> list[str]:
        return list(self._feeds)

    def install(self, feed: LoadedFeed) -> None:
        self._feeds = {**self._feeds, feed.name: feed}
        self._local_errors.pop(feed.name, None)

    def retain(self, names: Iterable[str]) -> list[str]:
        """Drop every loaded feed not in `names`; return the dropped ones."""
        keep = set(names)
        dropped = [n for n in self._feeds if n not in keep]
        if dropped:
            self._feeds = {n: f for n, f in self._feeds.items() if n in keep}
        return dropped

    def note_records(self, records: Iterable[FeedRecord]) -> None:
        self._records = {r.name: r for r in records}

    def note_local_error(self, name: str, error: str) -> None:
        self._local_errors[name] = error[:500]

    def hits(self, name: str) -> int:
        return int(self._hits.get(feed=name))

    def health_detail(self) -> dict[str, object]:
        """Per feed: loaded, entries, age and the last error (the registry's, or this process's)."""
        now = self._clock().timestamp()
        detail: dict[str, object] = {}
        for name in sorted(set(self._records) | set(self._feeds)):
            record = self._records.get(name)
            loaded = self._feeds.get(name)
            error = self._local_errors.get(name) or (record.last_error if record else None)
            lag = record.lag(now) if record else 0.0
            detail[name] = {
                "ok": error is None and (loaded is not None or record is None or record.sha256 is None),
                # A held update is its own word: the good copy still protects, but someone should look.
                "held": bool(error and error.startswith(HELD_PREFIX)),
                "loaded": loaded is not None,
                "entries": len(loaded.index) if loaded else 0,
                "age_seconds": record.age(now) if record else None,
                "update_lag_seconds": lag,
                "last_error": error,
                "hits": self.hits(name),
            }
        return detail

    # Metrics, read when scraped.

    def _entries_gauge(self) -> list[tuple[Labels, float]]:
        return [((("feed", n),), float(len(f.index))) for n, f in self._feeds.items()]

    def _age_gauge(self) -> list[tuple[Labels, float]]:
        now = self._clock().timestamp()
        out: list[tuple[Labels, float]] = []
        for name, record in self._records.items():
            age = record.age(now)
            if age is not None:
                out.append(((("feed", name),), age))
        return out

    def _lag_gauge(self) -> list[tuple[Labels, float]]:
        now = self._clock().timestamp()
        return [((("feed", n),), r.lag(now)) for n, r in self._records.items() if r.spec.enabled]

    def _bad_gauge(self) -> list[tuple[Labels, float]]:
        return [((("feed", n),), float(r.bad_lines)) for n, r in self._records.items()]


def utc(stamp: float | None) -> datetime | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC)
