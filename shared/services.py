"""The running domain: the store, keys, policies, lists and verdict sources, opened and closed together.

The proxy, the bot, the worker and the CLI all start from ``open_services``, so each of them sees
the same configuration the same way. Background refreshes (other replicas' changes, last-used
dates) run here as tasks that stop when the services close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from shared.config import Settings
from shared.events import EventBus
from shared.metrics import Registry
from shared.policy import PolicySet, load_policies
from shared.signing import Keyring, LinkSigner
from shared.signing_keys import (
    PROBE_EVERY_SECONDS,
    LoadedKeys,
    check_replicas,
    forget_probe,
    load_keyring,
    renew_probe,
    replica_name,
)
from shared.store import Database, open_database
from shared.store.clicks import ClickStore
from shared.store.tabl import TenantList
from shared.verdicts.admin import AdminVerdicts
from shared.verdicts.engine import VerdictEngine
from shared.verdicts.model import VerdictProvider
from shared.verdicts.sources import VerdictSources, open_sources

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    db: Database
    keyring: Keyring
    signer: LinkSigner
    policies: PolicySet
    tenant_list: TenantList
    admin_verdicts: AdminVerdicts
    verdicts: VerdictEngine
    clicks: ClickStore
    bus: EventBus
    metrics: Registry
    sources: VerdictSources | None = None
    key_origin: str = ""
    replica: str = field(default_factory=replica_name)
    clock: Clock = utc_now
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def refresh(self) -> None:
        """Pick up changes other processes made to cached tables."""
        changed = await self.admin_verdicts.load()
        changed = await self.tenant_list.load() or changed
        if self.sources is not None:
            await self.sources.refresh()  # invalidates the engine itself when a feed swaps
        if changed:
            self.verdicts.invalidate()
        await self.tenant_list.flush_last_used()


async def keys_from(settings: Settings, db: Database) -> LoadedKeys:
    """The signing keys: configured, or generated once in the database and shared by every replica."""
    return await load_keyring(settings.signing_keys.get_secret_value(), settings.signing_key_id, db,
                              settings.data_dir)


@asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    providers: Sequence[VerdictProvider] = (),
    refresh_every: float = 2.0,
    background: bool = True,
) -> AsyncIterator[Services]:
    """Open everything; ``background=False`` skips the refresh loop (one-shot CLI commands)."""
    policies = load_policies(settings.policy_file)
    db = await open_database(settings.effective_database_url, synchronous=settings.sqlite_synchronous)
    try:
        keys = await keys_from(settings, db)
    except BaseException:
        await db.close()
        raise
    keyring = keys.keyring
    for note in keys.notes:
        log.warning("signing keys: %s", note)
    metrics = Registry()
    bus = EventBus()
    admin = AdminVerdicts(db)
    tenant_list = TenantList(db)
    await admin.load()
    await tenant_list.load()
    sources = open_sources(settings, db, metrics, bus, clock)
    engine = VerdictEngine([admin, *sources.providers, *providers], metrics=metrics, bus=bus,
                           cache_ttl=settings.verdict_cache_ttl)
    sources.attach(engine.invalidate)
    clicks = ClickStore(db)
    clicks.start()
    services = Services(
        settings=settings,
        db=db,
        keyring=keyring,
        key_origin=keys.origin,
        signer=LinkSigner(keyring, settings.public_url),
        policies=policies,
        tenant_list=tenant_list,
        admin_verdicts=admin,
        verdicts=engine,
        clicks=clicks,
        bus=bus,
        metrics=metrics,
        sources=sources,
        clock=clock,
    )
    try:
        if background:
            # A replica whose links the others would refuse (or the reverse) must not serve any.
            await check_replicas(services.signer, db, services.replica)
            services.tasks.append(asyncio.create_task(_probe_loop(services), name="signing-probe"))
            # A serving process answers with every feed it knows from the first click on.
            await sources.load()
            services.tasks.append(asyncio.create_task(_refresh_loop(services, refresh_every), name="refresh"))
        yield services
    finally:
        for task in services.tasks:
            task.cancel()
        for task in services.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if background:
            with contextlib.suppress(Exception):
                await forget_probe(db, services.replica)
        await sources.close()
        await bus.drain()
        await clicks.close()
        with contextlib.suppress(Exception):
            await tenant_list.flush_last_used()
        await db.close()


async def _probe_loop(services: Services) -> None:
    while True:
        await asyncio.sleep(PROBE_EVERY_SECONDS)
        try:
            await renew_probe(services.signer, services.db, services.replica)
        except Exception as exc:  # the database may be briefly away; the probe is renewed next round
            log.warning("renewing the signing probe failed: %s", exc)


async def _refresh_loop(services: Services, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await services.refresh()
        except Exception as exc:  # the database may be briefly away; try again next round
            log.warning("refresh failed: %s", exc)


# The application key under which the proxy, the bot and the API find the running services.
SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
