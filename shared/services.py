"""The running domain: the store, keys, policies, lists and verdict sources, opened and closed together.

The proxy, the bot, the worker and the CLI all start from ``open_services``, so each of them sees
the same configuration the same way. Background refreshes (other replicas' changes, last-used
dates) run here as tasks that stop when the services close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from shared.config import Settings
from shared.events import EventBus
from shared.metrics import Registry
from shared.policy import PolicyError, PolicySet, configured_policies
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
from shared.store.changes import ChangeSignal, NoSignal
from shared.store.clicks import ClickStore
from shared.store.tenant_list import TenantList
from shared.tasks import stop_tasks
from shared.verdicts.admin import AdminVerdicts
from shared.verdicts.engine import VerdictEngine
from shared.verdicts.model import VerdictProvider
from shared.verdicts.sources import VerdictSources, open_sources

log = logging.getLogger(__name__)
POLICY_FILE_CHECK_SECONDS = 0.1
RELOAD_WAIT = 0.25  # seconds a click waits for the tables an admin change touched
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
    changes: ChangeSignal = field(default_factory=NoSignal)
    _reloading: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    async def refresh(self) -> None:
        """Pick up changes other processes made to cached tables."""
        await self._reload_tables()
        if self.sources is not None:
            await self.sources.refresh()  # invalidates the engine itself when a feed swaps
        await self.tenant_list.flush_last_used()

    async def _reload_tables(self) -> None:
        changed = await self.admin_verdicts.load()
        changed = await self.tenant_list.load() or changed
        if changed:
            self.verdicts.invalidate()

    def pending_changes(self, *, now: bool = False) -> Awaitable[None] | None:
        """What to await before answering when an admin change is on its way in; None (the common case,
        a fraction of a µs) when nothing changed. Synchronous so that a click pays no coroutine for it.
        ``now`` asks the store even if it was asked a moment ago (for paths that are not per click)."""
        task = self._reloading
        if task is None:
            if not (self.changes.poll(now=True) if now else self.changes.poll()):
                return None
            task = self._reloading = asyncio.ensure_future(self._catch_up())
        return _reloaded(task)

    async def current(self) -> None:
        """Apply any admin change another process made (block, allow, verdict) before going on."""
        pending = self.pending_changes(now=True)
        if pending is not None:
            await pending

    async def _catch_up(self) -> None:
        try:
            await self._reload_tables()
        except Exception as exc:  # the store may be away a moment: the timed refresh tries again
            log.warning("reloading changed tables failed: %s", exc)
        finally:
            self._reloading = None


async def _reloaded(task: asyncio.Task[None]) -> None:
    # Shielded: a click whose client went away must not cancel the reload others wait for. Bounded: a
    # store that answers slowly delays a click by at most RELOAD_WAIT; the reload goes on behind it.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(RELOAD_WAIT):
            await asyncio.shield(task)


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
    policies = configured_policies(settings.policy_file)
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
    changes = db.change_signal() if background else NoSignal()
    await changes.start()
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
        changes=changes,
    )
    try:
        if background:
            # A replica whose links the others would refuse (or the reverse) must not serve any.
            await check_replicas(services.signer, db, services.replica)
            services.tasks.append(asyncio.create_task(_probe_loop(services), name="signing-probe"))
            # A serving process answers with every feed it knows from the first click on.
            await sources.load()
            services.tasks.append(asyncio.create_task(_refresh_loop(services, refresh_every), name="refresh"))
            if settings.policy_file is not None:
                services.tasks.append(asyncio.create_task(
                    _watch_policies(services, settings.policy_file, POLICY_FILE_CHECK_SECONDS), name="policies"))
        yield services
    finally:
        await stop_tasks(services.tasks)
        if background:
            with contextlib.suppress(Exception):
                await forget_probe(db, services.replica)
        await changes.close()
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


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


async def _watch_policies(services: Services, path: Path, every: float) -> None:
    """Apply an edited policy file to the next click. A file is no store and sends no change signal, so
    its stamp is looked at (a stat, a few µs) every ``every`` seconds; a file that does not parse leaves
    the policies in force, and says why."""
    seen = _stamp(path)
    while True:
        await asyncio.sleep(every)
        stamp = _stamp(path)
        if stamp == seen:
            continue
        seen = stamp
        try:
            services.policies = await asyncio.to_thread(configured_policies, path)
        except PolicyError as exc:
            log.error("the policy file changed but cannot be used; the policies in force stay: %s", exc)
        else:
            log.info("policy file %s reloaded", path)


# The application key under which the proxy, the bot, the console and the API find the running services.
# It lives with the services rather than in safelinks/server.py (which sets it) because proxy/ and bot/
# may import only shared/: the key is the one thing of the application they need to know.
SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
