"""Keeping the feeds current: fetch, validate, index, log the difference, swap; and follow other processes.

`update` is the leader's work for one feed: it takes the feed's lease, revalidates the source
(ETag / If-Modified-Since), builds a new index from the body, logs the expressions that came and
went as verdict changes, stores the body as the last good copy and bumps the feed's version. A
download that fails, is cut short or does not parse changes nothing but the feed's error.

A download that parses but would drop more than half of the feed's entries at once (a body cut at
a line boundary, an upstream mistake) is **held**: the last good copy stays in force, the feed's
error says why (``feeds status``, ``/healthz``), and only ``feeds update NAME --force`` accepts it.
Protection must never shrink silently; a feed that really shrank is one command away.

`sync` is every process's work: when the registry's version moves it loads each feed whose
content changed from the local last good copy (or, when this host has none, from the source
itself, without logging anything: the leader did that), and drops feeds that were removed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

from shared.feeds.cache import FeedCache
from shared.feeds.errors import FeedError
from shared.feeds.fetch import Progress, fetch_feed
from shared.store.audit import Who
from shared.store.feeds import FeedRecord, FeedRegistry
from shared.verdicts.changes import ChangeLog, ExpressionChange
from shared.verdicts.feed_build import BuiltFeed, build_off_loop
from shared.verdicts.feeds import DEMO_FEED, HELD_PREFIX, FeedProvider, LoadedFeed, source_name, utc
from shared.verdicts.index import ExpressionIndex
from shared.verdicts.model import Verdict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpdateOutcome:
    """What one update did: `updated`, `not-modified`, `held` (a large drop, kept out), `busy` (another
    process holds it) or `failed`."""

    name: str
    status: str
    entries: int = 0
    bad_lines: int = 0
    rejected: int = 0
    added: int = 0
    removed: int = 0
    error: str | None = None
    bad_examples: tuple[str, ...] = ()




def drop_to_hold(previous: int, dropped: int) -> bool:
    """Whether a refresh dropping ``dropped`` of ``previous`` entries is held: more than half of them."""
    return previous > 0 and dropped * 2 > previous


def held_message(name: str, previous: int, dropped: int, entries: int) -> str:
    return (f"{HELD_PREFIX}the new download would drop {dropped:,} of {previous:,} entries (leaving {entries:,}); "
            f"the last good copy stays in force. If the feed really shrank, run "
            f"`safelinks feeds update {name} --force`")


@dataclass(frozen=True)
class FeedFetchSettings:
    timeout: float = 300.0
    max_bytes: int = 512 * 1024 * 1024
    allow_private: bool = False
    lease: float = 900.0


class FeedUpdater:
    """Updates feeds (leader) and loads what others updated (every process)."""

    def __init__(
        self,
        registry: FeedRegistry,
        cache: FeedCache,
        provider: FeedProvider,
        changes: ChangeLog,
        clock: Callable[[], datetime],
        *,
        fetch: FeedFetchSettings | None = None,
        demo: bool = True,
        use_process: bool = True,
        on_swap: Callable[[], None] | None = None,
    ) -> None:
        self.registry = registry
        self.cache = cache
        self.provider = provider
        self._changes = changes
        self._clock = clock
        self._fetch = fetch or FeedFetchSettings()
        self._demo = demo
        self._use_process = use_process
        self.on_swap = on_swap
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._seen_version = -1
        self._locks: dict[str, asyncio.Lock] = {}

    def _now(self) -> float:
        return self._clock().timestamp()

    def _swapped(self) -> None:
        if self.on_swap is not None:
            self.on_swap()

    async def update(self, name: str, *, force: bool = False, progress: Progress | None = None,
                     only_if_due: bool = False, actor: Who | None = None) -> UpdateOutcome:
        """Fetch and apply one feed now, if this process can take its lease (and, with ``only_if_due``, if due).
        A forced update applied for ``actor`` is audited with it."""
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            await self.registry.require(name)  # an unknown name is an error, not "busy"
            if not await self.registry.claim(name, self._owner, now=self._now(), lease=self._fetch.lease):
                return UpdateOutcome(name, "busy")
            try:
                # Read under the lease: another worker may have just updated it, making it not due any more.
                record = await self.registry.require(name)
                if only_if_due and not record.due(self._now()):
                    return UpdateOutcome(name, "busy")
                return await self._update(record, force, progress, actor if force else None)
            finally:
                await self.registry.release(name, self._owner)

    async def _update(self, record: FeedRecord, force: bool, progress: Progress | None,
                      actor: Who | None = None) -> UpdateOutcome:
        name = record.name
        await self.registry.record_attempt(name, now=self._now())
        current = await self._baseline(record)
        etag = last_modified = None
        if current is not None and not force:
            etag, last_modified = record.etag, record.last_modified
        try:
            fetched = await fetch_feed(record.spec.source, etag=etag, last_modified=last_modified,
                                       max_bytes=self._fetch.max_bytes, timeout=self._fetch.timeout,
                                       progress=progress, allow_private=self._fetch.allow_private)
            if fetched.not_modified or fetched.data is None:
                await self.registry.record_not_modified(name, now=self._now(), etag=fetched.etag,
                                                        last_modified=fetched.last_modified)
                await asyncio.to_thread(self.cache.touch, name, fetched_at=self._clock())
                return UpdateOutcome(name, "not-modified", entries=len(current.index) if current else 0)
            data = fetched.data
            # The first import is a difference from nothing; without any copy of what another host
            # fetched before, there is nothing to compare with.
            baseline = current.index if current else (ExpressionIndex.empty() if record.sha256 is None else None)
            built = await build_off_loop(data, record.spec.format, record.spec.column, baseline,
                                         current.threats if current else (), use_process=self._use_process)
        except FeedError as exc:
            await self.registry.record_failure(name, str(exc), now=self._now())
            log.warning("feed %s: update failed, keeping the last good copy: %s", name, exc)
            return UpdateOutcome(name, "failed", error=str(exc))
        previous = len(current.index) if current is not None else record.entries
        dropped = len(built.removed) if current is not None else max(0, previous - built.entries)
        if not force and drop_to_hold(previous, dropped):
            reason = held_message(name, previous, dropped, built.entries)
            await self.registry.record_failure(name, reason, now=self._now())
            log.warning("feed %s: %s", name, reason)
            return UpdateOutcome(name, "held", built.entries, built.bad_lines, built.rejected, 0, dropped,
                                 error=reason)
        # Changes are logged before the new copy is recorded: a crash in between repeats them at the
        # next update (the old copy is still the baseline), which is better than losing them.
        baseline_known = current is not None or record.sha256 is None
        added = removed = 0
        if baseline_known:
            added, removed = await self._log_changes(name, built)
        else:
            log.warning("feed %s: no previous copy on this host to compare with; changes not logged", name)
        now = self._clock()
        try:
            # Disk writes (fsync of a body of many MB) and hashing stay off the event loop.
            await asyncio.to_thread(self.cache.store, name, data, etag=fetched.etag,
                                    last_modified=fetched.last_modified, entries=built.entries,
                                    bad_lines=built.bad_lines, fetched_at=now)
        except FeedError as exc:
            await self.registry.record_failure(name, str(exc), now=self._now())
            return UpdateOutcome(name, "failed", error=str(exc))
        sha = await asyncio.to_thread(_sha256, data)
        await self.registry.record_success(name, now=now.timestamp(), etag=fetched.etag,
                                           last_modified=fetched.last_modified, entries=built.entries,
                                           bad_lines=built.bad_lines, rejected=built.rejected, sha256=sha,
                                           accepted_by=actor,
                                           accepted=f"{previous:,} entries before, {built.entries:,} now")
        fresh = await self.registry.require(name)
        self.provider.install(LoadedFeed.of(name, built, version=fresh.version, sha256=sha, loaded_at=now,
                                            fetched_at=now))
        self._swapped()
        log.info("feed %s: %d entries (%d bad lines, %d unusable), +%d -%d", name, built.entries,
                 built.bad_lines, built.rejected, added, removed)
        return UpdateOutcome(name, "updated", built.entries, built.bad_lines, built.rejected, added, removed,
                             bad_examples=tuple(built.bad_examples + built.rejected_examples))

    async def _baseline(self, record: FeedRecord) -> LoadedFeed | None:
        """The index the update is compared with: the one loaded, else the last good copy on disk."""
        current = self.provider.loaded(record.name)
        if current is not None and current.sha256 == record.sha256:
            return current
        if record.sha256 is None:
            return current
        try:
            await self._load_one(record, fetch_missing=False)
        except FeedError as exc:
            log.warning("feed %s: last good copy unusable: %s", record.name, exc)
        return self.provider.loaded(record.name)

    async def _log_changes(self, name: str, built: BuiltFeed) -> tuple[int, int]:
        source = source_name(name)

        def threat(code: int, table: tuple[str, ...]) -> tuple[str, ...]:
            return (table[code],) if code < len(table) else ()

        def changes() -> Iterator[ExpressionChange]:
            for expr, code in built.added:
                yield ExpressionChange(expr, Verdict.UNKNOWN, Verdict.MALICIOUS, threat(code, built.threats),
                                       f"listed by feed {name}")
            for expr, code in built.removed:
                yield ExpressionChange(expr, Verdict.MALICIOUS, Verdict.CLEAN, threat(code, built.old_threats),
                                       f"no longer listed by feed {name}")

        await self._changes.record(source, changes(), at=self._clock())
        return len(built.added), len(built.removed)

    async def retire(self, name: str, *, remove: bool, actor: Who | None = None) -> int:
        """Remove (or disable) a feed, logging each of its entries as no longer malicious."""
        record = await self.registry.require(name)
        current = await self._baseline(record) if record.spec.enabled else None
        if remove:
            await self.registry.remove(name, actor=actor)
        else:
            await self.registry.set_enabled(name, False, actor=actor)
        if current is None:
            return 0
        gone = ExpressionIndex.diff(current.index, ExpressionIndex.empty()).removed
        reason = f"feed {name} {'removed' if remove else 'disabled'}"
        await self._changes.record(source_name(name), (
            ExpressionChange(e, Verdict.MALICIOUS, Verdict.CLEAN,
                             (current.threats[c],) if c < len(current.threats) else (), reason)
            for e, c in gone), at=self._clock())
        self.provider.retain(n for n in self.provider.names() if n != name)
        self._swapped()
        return len(gone)

    async def update_due(self) -> list[UpdateOutcome]:
        """Update every enabled feed whose interval has passed (the worker loop's tick)."""
        now = self._now()
        outcomes = []
        for record in await self.registry.list():
            if record.due(now):
                outcomes.append(await self.update(record.name, only_if_due=True))
        return outcomes

    async def sync(self, *, force: bool = False) -> bool:
        """Load feeds other processes changed; return whether anything was swapped."""
        every = await self.registry.list()
        # Records are noted every time: a failed update changes the error, not the version.
        self.provider.note_records(every)
        version = await self.registry.version()
        if version == self._seen_version and not force:
            return False
        records = [r for r in every if r.spec.enabled]
        swapped = False
        for record in records:
            loaded = self.provider.loaded(record.name)
            if record.sha256 is None or (loaded is not None and loaded.sha256 == record.sha256):
                continue
            try:
                await self._load_one(record, fetch_missing=True)
                swapped = True
            except FeedError as exc:
                self.provider.note_local_error(record.name, str(exc))
                log.warning("feed %s: cannot load: %s", record.name, exc)
        names = [r.name for r in records]
        if not every and self._demo:
            if self.provider.loaded(DEMO_FEED) is None:
                await self._load_demo()
                swapped = True
            names = [DEMO_FEED]
        swapped = bool(self.provider.retain(names)) or swapped
        self._seen_version = version
        if swapped:
            self._swapped()
        return swapped

    async def _load_one(self, record: FeedRecord, *, fetch_missing: bool) -> None:
        """Index the last good copy of `record` (or fetch it when this host has none)."""
        cached = await asyncio.to_thread(self.cache.load, record.name)
        if cached is not None and cached.meta.sha256 == record.sha256:
            data, fetched_at = cached.data, cached.meta.fetched_at
        elif fetch_missing:
            fetched = await fetch_feed(record.spec.source, max_bytes=self._fetch.max_bytes,
                                       timeout=self._fetch.timeout, allow_private=self._fetch.allow_private)
            assert fetched.data is not None  # an unconditional fetch always has a body
            data, fetched_at = fetched.data, self._clock()
        else:
            return
        built = await build_off_loop(data, record.spec.format, record.spec.column, use_process=self._use_process)
        sha = await asyncio.to_thread(_sha256, data)
        if cached is None or cached.meta.sha256 != sha:
            await asyncio.to_thread(self.cache.store, record.name, data, etag=None, last_modified=None,
                                    entries=built.entries, bad_lines=built.bad_lines, fetched_at=fetched_at)
        # The version records which registry state this copy answers to, even when the source
        # moved on since: the next registry change triggers another load.
        self.provider.install(LoadedFeed.of(record.name, built, version=record.version, sha256=record.sha256 or sha,
                                            loaded_at=self._clock(), fetched_at=fetched_at))

    async def _load_demo(self) -> None:
        data = resources.files("shared.feeds").joinpath("demo.txt").read_bytes()
        built = await build_off_loop(data, "plain", None, use_process=False)
        self.provider.install(LoadedFeed.of(DEMO_FEED, built, version=0, sha256=hashlib.sha256(data).hexdigest(),
                                            loaded_at=self._clock(), fetched_at=utc(None)))

    async def run(self, every: float = 30.0) -> None:
        """The worker loop: update due feeds, forever."""
        while True:
            try:
                await self.update_due()
            except Exception as exc:  # the database may be briefly away; the next tick tries again
                log.warning("feed updater tick failed: %s", exc)
            await asyncio.sleep(every)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
