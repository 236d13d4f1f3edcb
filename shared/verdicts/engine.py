"""Combining the sources: precedence by tier, the worst opinion within a tier, a TTL cache, isolation.

A source that fails or stalls is skipped for that click (logged, counted, shown in health); it never
blocks a click. Tiers: admin verdicts (0) win outright over feeds and scans (1), which win over
heuristics (2). Within a tier the worst verdict wins, so one feed listing a URL as malicious is
enough; last-resort sources of a tier (scans) are asked only when the rest of it is silent. The
cache is keyed by canonical URL and cleared whenever any source changes its mind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from cachetools import TTLCache

from shared.events import EventBus, VerdictChanged
from shared.metrics import Registry
from shared.redaction import redact_text
from shared.urls import canonical_parts, lookup_expressions
from shared.verdicts.model import SEVERITY, UNKNOWN, Verdict, VerdictProvider, VerdictResult

log = logging.getLogger(__name__)


@dataclass
class SourceHealth:
    ok: bool = True
    last_error: str = ""
    last_error_at: float = 0.0
    failures: int = 0
    queries: int = 0
    hits: int = 0


@dataclass
class VerdictEngine:
    providers: Sequence[VerdictProvider]
    metrics: Registry
    bus: EventBus | None = None
    cache_ttl: float = 30.0
    provider_timeout: float = 0.25
    health: dict[str, SourceHealth] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._cache: TTLCache[str, VerdictResult] = TTLCache(maxsize=100_000, ttl=self.cache_ttl or 1e-9)
        self._changed = asyncio.Event()
        self._tiers = sorted({p.tier for p in self.providers})
        # Plain integers on the hot path, read by the gauge when scraped.
        self.cache_hits = 0
        self.cache_misses = 0
        self.metrics.gauge("safelinks_verdict_cache_total", "Verdict cache lookups, by result.",
                           self._cache_counts, kind="counter")
        self._queries = self.metrics.counter("safelinks_verdict_queries_total", "Queries per source.")
        self._hits = self.metrics.counter("safelinks_verdict_hits_total", "Verdicts found per source.")
        self._errors = self.metrics.counter("safelinks_verdict_errors_total", "Failures per source.")
        self.metrics.gauge("safelinks_verdict_cache_hit_ratio", "Share of verdict lookups answered from the cache.",
                           lambda: [((), self.cache_hit_ratio())])
        for p in self.providers:
            self.health[p.name] = SourceHealth()
        if self.bus is not None:
            self.bus.subscribe(VerdictChanged, self._on_change)

    def _cache_counts(self) -> list[tuple[tuple[tuple[str, str], ...], float]]:
        return [((("result", "hit"),), self.cache_hits), ((("result", "miss"),), self.cache_misses)]

    def _on_change(self, _: VerdictChanged) -> None:
        self.invalidate()

    def invalidate(self) -> None:
        """Forget cached verdicts and wake clicks waiting on a pending scan."""
        self._cache.clear()
        self._changed.set()
        self._changed = asyncio.Event()

    def cached(self, url: str) -> VerdictResult | None:
        """The verdict for a URL if the cache holds it (pending verdicts never are): no coroutine needed."""
        if self.cache_ttl > 0:
            # Keyed by the URL as clicked: a repeat click skips canonicalisation too.
            hit = self._cache.get(url)
            if hit is not None:
                self.cache_hits += 1
                return hit
        return None

    async def check(self, url: str) -> VerdictResult:
        """The combined verdict for a URL. Raises shared.urls.InvalidURL for a URL that has none."""
        hit = self.cached(url)
        if hit is not None:
            return hit
        self.cache_misses += 1
        # One parse gives both: parsing the canonical text again could read it differently ("\\").
        parts = canonical_parts(url)
        result = await self._decide(str(parts), lookup_expressions(parts))
        if self.cache_ttl > 0 and result.verdict != Verdict.PENDING:
            self._cache[url] = result
        return result

    async def _decide(self, canon: str, exprs: list[str]) -> VerdictResult:
        for tier in self._tiers:
            sources = [p for p in self.providers if p.tier == tier and p.enabled]
            # Within a tier, last-resort sources (scans) speak only when the others are silent.
            for group in ([p for p in sources if not getattr(p, "last_resort", False)],
                          [p for p in sources if getattr(p, "last_resort", False)]):
                if not group:
                    continue
                if len(group) == 1:
                    found = [await self._ask(group[0], canon, exprs)]
                else:
                    found = await asyncio.gather(*(self._ask(p, canon, exprs) for p in group))
                results = [r for r in found if r is not None and r.verdict != Verdict.UNKNOWN]
                if results:
                    return max(results, key=lambda r: SEVERITY[r.verdict])
        return UNKNOWN

    async def _ask(self, provider: VerdictProvider, canon: str, exprs: list[str]) -> VerdictResult | None:
        state = self.health[provider.name]
        state.queries += 1
        self._queries.inc(source=provider.name)
        try:
            if getattr(provider, "in_memory", False):
                result = await provider.check(canon, exprs)
            else:
                result = await asyncio.wait_for(provider.check(canon, exprs), self.provider_timeout)
        except Exception as exc:  # isolation: one broken source must not break a click
            state.ok = False
            state.failures += 1
            state.last_error = redact_text(f"{type(exc).__name__}: {exc}")[:300]
            state.last_error_at = time.time()
            self._errors.inc(source=provider.name)
            log.warning("verdict source %s failed: %s", provider.name, state.last_error)
            return None
        state.ok = True
        if result is not None:
            state.hits += 1
            self._hits.inc(source=provider.name)
        return result

    async def wait_for(self, url: str, timeout: float) -> VerdictResult:
        """Check, and while the verdict is pending wait (up to ``timeout``) for a source to decide."""
        deadline = time.monotonic() + timeout
        result = await self.check(url)
        while result.verdict == Verdict.PENDING:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, 1.0)):
                    await self._changed.wait()
            result = await self.check(url)
        return result

    def health_report(self) -> dict[str, dict[str, object]]:
        report: dict[str, dict[str, object]] = {
            name: {"ok": h.ok, "failures": h.failures, "last_error": h.last_error,
                   "queries": h.queries, "hits": h.hits}
            for name, h in self.health.items()
        }
        for provider in self.providers:
            # Sources with parts of their own (each feed, the Safe Browsing lists) describe them.
            detail = getattr(provider, "health_detail", None)
            if callable(detail):
                report[provider.name]["detail"] = detail()
        return report

    def cache_hit_ratio(self) -> float:
        total = self.cache_hits + self.cache_misses
        return self.cache_hits / total if total else 0.0

