"""The configured verdict sources, assembled from the settings: feeds, heuristics, scans, Safe Browsing.

`open_sources` builds them; the services put them behind the admin verdicts in the engine. Every
process loads the feed indexes (`load`) and follows other processes' updates (`refresh`); the
worker role also runs the loops that fetch (`background`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.config import Settings
from shared.events import EventBus
from shared.feeds.cache import FeedCache
from shared.metrics import Registry
from shared.store.database import Database
from shared.store.feeds import FeedRegistry
from shared.verdicts.changes import ChangeLog
from shared.verdicts.feed_updater import FeedFetchSettings, FeedUpdater
from shared.verdicts.feeds import FeedProvider
from shared.verdicts.heuristic_source import HeuristicsProvider
from shared.verdicts.model import VerdictProvider
from shared.verdicts.safebrowsing import SafeBrowsingProvider
from shared.verdicts.sb_lists import SafeBrowsingClient
from shared.verdicts.scans import ScanProvider
from shared.verdicts.urlscan import UrlscanClient

log = logging.getLogger(__name__)


@dataclass
class VerdictSources:
    feeds: FeedProvider
    updater: FeedUpdater
    heuristics: HeuristicsProvider
    changes: ChangeLog
    extra: list[Any] = field(default_factory=list)  # scans, Safe Browsing: providers with run() and close()
    _loaded: bool = False

    @property
    def providers(self) -> list[VerdictProvider]:
        return [self.feeds, *self.extra, self.heuristics]

    def attach(self, invalidate: Callable[[], None]) -> None:
        """Tell the engine to forget cached verdicts whenever a source swaps its data."""
        self.updater.on_swap = invalidate
        for provider in self.extra:
            if hasattr(provider, "on_change"):
                provider.on_change = invalidate

    async def load(self) -> None:
        """Load the feed indexes from the last good copies (once; later calls do nothing)."""
        if not self._loaded:
            await self.updater.sync(force=True)
            self._loaded = True

    async def refresh(self) -> bool:
        """Follow other processes: reload feeds whose content changed."""
        if not self._loaded:
            return False
        return await self.updater.sync()

    def background(self, *, feeds: bool, feed_tick: float = 30.0) -> list[Coroutine[Any, Any, None]]:
        """Loops to run: each optional source's own (Safe Browsing keeps its lists per process), and,
        with `feeds` (the worker role), the feed updates, which one process per feed performs."""
        loops: list[Coroutine[Any, Any, None]] = [p.run() for p in self.extra if hasattr(p, "run")]
        if feeds:
            loops.append(self.updater.run(feed_tick))
        return loops

    async def close(self) -> None:
        for provider in self.extra:
            if hasattr(provider, "close"):
                with contextlib.suppress(Exception):
                    await provider.close()


def open_sources(
    settings: Settings,
    db: Database,
    metrics: Registry,
    bus: EventBus | None,
    clock: Callable[[], datetime],
) -> VerdictSources:
    feeds = FeedProvider(metrics, clock)
    changes = ChangeLog(db, bus)
    updater = FeedUpdater(
        FeedRegistry(db),
        FeedCache(settings.data_dir / "feeds"),
        feeds,
        changes,
        clock,
        fetch=FeedFetchSettings(timeout=settings.feed_timeout, max_bytes=settings.feed_max_bytes,
                                allow_private=settings.feed_allow_private,
                                lease=max(600.0, settings.feed_timeout * 3)),
        demo=settings.feed_demo,
    )
    heuristics = HeuristicsProvider(settings.heuristics, tenant_domains=settings.tenant_domains,
                                    enabled=settings.heuristics_enabled)
    return VerdictSources(feeds, updater, heuristics, changes, extra=_optional_sources(settings, db, metrics,
                                                                                      changes, clock))


def _optional_sources(settings: Settings, db: Database, metrics: Registry, changes: ChangeLog,
                      clock: Callable[[], datetime]) -> list[Any]:
    found: list[Any] = []
    if settings.scan_api_url:
        scanner = UrlscanClient(settings.scan_api_url, settings.scan_api_key.get_secret_value(),
                                visibility=settings.scan_visibility)
        found.append(ScanProvider(db, scanner, changes, clock, poll_interval=settings.scan_poll_interval,
                                  timeout=settings.scan_timeout, result_ttl=settings.scan_result_ttl,
                                  allow_private=settings.scan_allow_private))
    if settings.safebrowsing_mode != "off":
        client = SafeBrowsingClient(settings.safebrowsing_url, settings.safebrowsing_api_key.get_secret_value(),
                                    settings.safebrowsing_client_id)
        found.append(SafeBrowsingProvider(client, clock, mode=settings.safebrowsing_mode,
                                          threat_types=settings.safebrowsing_threat_types, changes=changes))
    return found
