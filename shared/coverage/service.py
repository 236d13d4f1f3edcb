"""The coverage job: find where the Teams app is missing and install it there through Microsoft Graph.

A round (``run_round``, a scheduled job: one worker at a time, once per interval) reads the app's
catalog id, then per kind in scope lists the targets (teams; users; the users' group chats), asks
Graph whether the app is installed in each, and records the answer. Where it is missing, the
install is not made in the round: the round writes the target's new request (``generation``) and
an outbox item of kind ``graph-install`` in one transaction, and the outbox delivers it — paced,
retried after 429/5xx honouring ``Retry-After``, kept across restarts, claimed by one worker. A
409 means someone installed it meanwhile (covered); any other refusal is recorded on the target with why
and tried again next round, since its cause (a permission, a policy) may be fixed by then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.coverage.directory import Directory, Found, installed_apps_path
from shared.coverage.model import CoverageError, Kind, Scope, State, install_body, install_permission
from shared.graph import GraphClient, GraphError, GraphRefused, GraphUnavailable
from shared.outbox import Outbox, RetryLater
from shared.schedule import Job
from shared.store.coverage import CoverageStore
from shared.store.database import Database
from shared.store.outbox import OutboxItem

log = logging.getLogger(__name__)
KIND = "graph-install"
JOB = "coverage"
ORDER = (Kind.TEAM, Kind.USER, Kind.CHAT)  # users before chats: a round's chats are its users' chats
REFUSALS_BEFORE_GIVING_UP = 5  # the first installs checks of a kind all refused: a permission is missing


def refusal(kind: Kind, exc: GraphRefused, *, rsc_consent: bool) -> str:
    """Why an install was refused, with what to check."""
    if exc.status == 403:
        return (f"grant the application permission {install_permission(kind, rsc_consent=rsc_consent)} "
                f"(admin consent) and allow the app in the Teams app permission policies ({exc})")
    if exc.status == 404:
        return f"the {kind.value} is gone, or the user has no Teams licence ({exc})"
    return str(exc)


class Coverage:
    def __init__(self, db: Database, outbox: Outbox, scope: Scope, *, graph: GraphClient | None,
                 app_external_id: str, clock: Callable[[], datetime], catalog_app_id: str = "",
                 rsc_consent: bool = True, rate: float = 5.0) -> None:
        self.db = db
        self.outbox = outbox
        self.scope = scope
        self.graph = graph
        self.app_external_id = app_external_id
        self.catalog_app_id = catalog_app_id
        self.rsc_consent = rsc_consent
        self.rate = rate
        self.clock = clock
        self.store = CoverageStore(db)

    def job(self, every_seconds: float) -> Job:
        return Job(JOB, every_seconds, self.run_round, retry_after=600.0)

    def _now(self) -> float:
        return self.clock().timestamp()

    # The round.

    async def run_round(self) -> str:
        """One discovery round over every kind in scope; returns what it did, kind by kind."""
        if self.graph is None:
            raise CoverageError("Microsoft Graph is not configured (SAFELINKS_GRAPH_* or the bot's credentials)")
        directory = Directory(self.graph, self.app_external_id, rate=self.rate)
        kinds = [k for k in ORDER if k in self.scope.kinds]
        try:
            catalog = self.catalog_app_id or await directory.catalog_app_id()
        except (GraphError, CoverageError) as exc:
            now = self._now()
            for kind in kinds:
                await self.store.start_round(kind, now)
                await self.store.finish_round(kind, now, now, found=0, failure=f"the app's catalog id: {exc}")
            raise CoverageError(f"the app's catalog id: {exc}") from None
        users: list[Found] | None = None
        done = []
        for kind in kinds:
            started = self._now()
            await self.store.start_round(kind, started)
            try:
                if kind is Kind.TEAM:
                    found = [t async for t in directory.teams() if self.scope.everyone or t.id.lower() in
                             self.scope.groups]
                else:
                    if users is None:
                        users = await self._users(directory)
                    found = users if kind is Kind.USER else await self._chats(directory, users)
                asked = await self._check(directory, kind, found, catalog)
            except (GraphError, CoverageError) as exc:
                await self.store.finish_round(kind, started, self._now(), found=0, failure=str(exc))
                done.append(f"{kind.setting}: failed: {exc}")
                log.warning("coverage of %s failed: %s", kind.setting, exc)
                continue
            gone = await self.store.finish_round(kind, started, self._now(), found=len(found), failure=None)
            done.append(f"{kind.setting}: {len(found)} found, {asked} installs asked" + (f", {gone} gone" if gone
                                                                                         else ""))
        self.outbox.wake()
        summary = "; ".join(done)
        log.info("coverage round: %s (%d Graph reads)", summary, directory.calls)
        return summary

    async def _users(self, directory: Directory) -> list[Found]:
        if self.scope.everyone:
            return [u async for u in directory.users()]
        found: dict[str, Found] = {}
        for group in sorted(self.scope.groups):
            async for u in directory.members(group):
                found[u.id] = u
        for name in sorted(self.scope.users):
            one = await directory.user(name)
            if one is not None:
                found[one.id] = one
        return sorted(found.values(), key=lambda u: u.name)

    async def _chats(self, directory: Directory, users: list[Found]) -> list[Found]:
        found: dict[str, Found] = {}
        for u in users:
            if not self.scope.excludes(u.id, u.upn):
                async for chat in directory.group_chats(u.id):
                    found.setdefault(chat.id, chat)
        return list(found.values())

    async def _check(self, directory: Directory, kind: Kind, found: list[Found], catalog: str) -> int:
        """Ask Graph about each target, record it, and queue the installs due; returns how many were queued."""
        asked = refused = checked = 0
        for target in found:
            excluded = self.scope.excludes(target.id, target.upn)
            installed = False
            if not excluded:
                checked += 1
                try:
                    installed = await directory.installed(kind, target.id)
                except GraphRefused as exc:
                    if exc.status == 404:
                        continue  # gone since it was listed
                    refused += 1
                    if refused == checked >= min(REFUSALS_BEFORE_GIVING_UP, len(found)):
                        raise CoverageError(f"reading installed apps refused: {refusal(kind, exc, rsc_consent=False)}"
                                            ) from None
                    await self._record_refusal(kind, target, f"reading its apps: {exc}")
                    continue
            async with self.db.transaction() as tx:
                generation = await self.store.observe(tx, kind, target.id, target.name, installed=installed,
                                                      excluded=excluded, now=self._now())
                if generation is not None:
                    await self.outbox.enqueue(
                        KIND, {"kind": kind.value, "id": target.id, "generation": generation, "catalog": catalog},
                        dedupe_key=f"coverage:{kind.value}:{target.id}:{generation}", tx=tx)
                    asked += 1
        return asked

    async def _record_refusal(self, kind: Kind, target: Found, why: str) -> None:
        async with self.db.transaction() as tx:
            generation = await self.store.observe(tx, kind, target.id, target.name, installed=False, excluded=False,
                                                  now=self._now())
        if generation is not None:
            await self.store.settle(kind, target.id, generation, state=State.FAILED, detail=why, now=self._now())

    # Delivering (the outbox handler for kind "graph-install").

    async def deliver(self, item: OutboxItem) -> dict[str, Any]:
        payload = item.payload
        kind, target_id, generation = Kind(payload["kind"]), str(payload["id"]), int(payload["generation"])
        if await self.store.generation(kind, target_id) != generation:
            return {"skipped": "a later round replaced this request, or the target is gone"}
        if self.graph is None:
            raise RetryLater("Microsoft Graph is not configured in this process")
        body = install_body(self.graph.base_url, kind, str(payload["catalog"]), rsc_consent=self.rsc_consent)
        try:
            await self.graph.post(installed_apps_path(kind, target_id), body)
        except GraphUnavailable as exc:
            if exc.status == 409:
                await self._settle(kind, target_id, generation, State.COVERED, "already installed (Graph answered 409)")
                return {"installed": False, "already": True}
            raise RetryLater(str(exc), exc.retry_after) from None
        except GraphRefused as exc:
            # Graph's decision, recorded on the target (the truth `safelinks coverage` shows) and tried again
            # next round; the outbox item itself was delivered.
            why = refusal(kind, exc, rsc_consent=self.rsc_consent)
            await self._settle(kind, target_id, generation, State.FAILED, why)
            return {"installed": False, "refused": why}
        await self._settle(kind, target_id, generation, State.COVERED, "installed by Safe Links")
        return {"installed": True}

    async def _settle(self, kind: Kind, target_id: str, generation: int, state: State, detail: str) -> None:
        await self.store.settle(kind, target_id, generation, state=state, detail=detail, now=self._now())
