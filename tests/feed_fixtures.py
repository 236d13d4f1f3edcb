"""A feed server on loopback whose body the test changes, and the feed machinery around one database."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

from shared.events import EventBus, VerdictChanged
from shared.feeds.cache import FeedCache
from shared.metrics import Registry
from shared.store import Database, open_database
from shared.store.feeds import FeedRegistry
from shared.verdicts.changes import ChangeLog
from shared.verdicts.feed_updater import FeedFetchSettings, FeedUpdater
from shared.verdicts.feeds import FeedProvider
from tests.conftest import FakeClock

DATA = Path(__file__).parent / "data" / "feeds"


@dataclass
class FeedServer:
    """Serves `body` at /feed with a strong ETag; 304 when the client's validator matches."""

    body: bytes = b""
    status: int = 200
    requests: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(dict(request.headers))
        if self.status != 200:
            return web.Response(status=self.status, text="unavailable")
        if request.headers.get("If-None-Match") == self.etag:
            return web.Response(status=304, headers={"ETag": self.etag})
        return web.Response(body=self.body, headers={"ETag": self.etag,
                                                     "Last-Modified": "Sun, 29 Nov 2026 12:00:00 GMT"})


@asynccontextmanager
async def feed_server(body: bytes = b"") -> AsyncIterator[FeedServer]:
    state = FeedServer(body)
    app = web.Application()
    app.router.add_get("/feed", state.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state.url = str(server.make_url("/feed"))
    try:
        yield state
    finally:
        await server.close()


@dataclass
class FeedRig:
    db: Database
    registry: FeedRegistry
    provider: FeedProvider
    updater: FeedUpdater
    bus: EventBus
    clock: FakeClock
    events: list[VerdictChanged]
    metrics: Registry

    def updater_for(self, cache_dir: Path) -> tuple[FeedProvider, FeedUpdater]:
        """Another process on the same database (its own provider and, maybe, its own disk)."""
        provider = FeedProvider(Registry(), self.clock)
        updater = FeedUpdater(self.registry, FeedCache(cache_dir), provider, ChangeLog(self.db, None), self.clock,
                              fetch=FeedFetchSettings(allow_private=True), demo=False, use_process=False)
        return provider, updater

    async def changes(self) -> list[tuple[str, str, str, str]]:
        rows = await self.db.fetchall(
            "SELECT expression, old_verdict, new_verdict, source FROM verdict_changes ORDER BY id")
        return [(r["expression"], r["old_verdict"], r["new_verdict"], r["source"]) for r in rows]


@asynccontextmanager
async def feed_rig(tmp: Path, *, use_process: bool = False, demo: bool = False,
                   start: datetime | None = None) -> AsyncIterator[FeedRig]:
    db = await open_database(f"sqlite:///{tmp / 'feeds.db'}")
    bus = EventBus()
    events: list[VerdictChanged] = []

    async def seen(event: VerdictChanged) -> None:
        events.append(event)

    bus.subscribe(VerdictChanged, seen)
    clock = FakeClock(start)
    metrics = Registry()
    registry = FeedRegistry(db)
    provider = FeedProvider(metrics, clock)
    updater = FeedUpdater(registry, FeedCache(tmp / "cache"), provider, ChangeLog(db, bus, batch=3), clock,
                          fetch=FeedFetchSettings(allow_private=True), demo=demo, use_process=use_process)
    try:
        yield FeedRig(db, registry, provider, updater, bus, clock, events, metrics)
    finally:
        await bus.drain()
        await db.close()
