"""What the coverage round reads from Microsoft Graph: the catalog app, teams, users, group chats, installs.

Every read is paced (at most ``rate`` calls a second) and a throttled or failing read is tried again
after Graph's ``Retry-After`` (else 1, 2, 4 … seconds), a few times, before the round gives up on
that kind; a refusal (403: a permission is missing) is raised at once with Graph's words.

| what | call | application permission |
| --- | --- | --- |
| the app's catalog id | ``GET /appCatalogs/teamsApps?$filter=externalId eq '{app id}'`` | AppCatalog.Read.All |
| teams | ``GET /teams`` | Team.ReadBasic.All |
| users | ``GET /users`` | User.Read.All |
| a group's members | ``GET /groups/{id}/transitiveMembers/microsoft.graph.user`` | GroupMember.Read.All |
| a user's chats | ``GET /users/{id}/chats`` | Chat.ReadBasic.All |
| installed? | ``GET …/installedApps?$expand=teamsApp&$filter=…`` | TeamsAppInstallation.ReadWriteSelfFor….All |
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from shared.coverage.model import CoverageError, Kind
from shared.graph import GraphClient, GraphRefused, GraphUnavailable, segment

T = TypeVar("T")
ATTEMPTS = 5
LONGEST_WAIT = 120.0  # a longer Retry-After ends the round; the scheduler tries again later
_USER_FIELDS = "id,userPrincipalName,displayName,accountEnabled,userType"


@dataclass(frozen=True, slots=True)
class Found:
    """A target as Graph lists it."""

    id: str
    name: str
    upn: str = ""


def installed_apps_path(kind: Kind, target_id: str) -> str:
    if kind is Kind.USER:
        return f"/users/{segment(target_id)}/teamwork/installedApps"
    return f"/{'teams' if kind is Kind.TEAM else 'chats'}/{segment(target_id)}/installedApps"


def _quoted(value: str) -> str:
    return value.replace("'", "''")  # an OData string literal


class Directory:
    """Paced, retried reads for one round."""

    def __init__(self, graph: GraphClient, app_external_id: str, *, rate: float,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.graph = graph
        self.app_external_id = app_external_id
        self._gap = 1.0 / rate
        self._next = 0.0
        self._sleep = sleep
        self.calls = 0

    async def _pace(self) -> None:
        now = time.monotonic()
        if self._next > now:
            await self._sleep(self._next - now)
        self._next = max(now, self._next) + self._gap
        self.calls += 1

    async def _retried(self, call: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(1, ATTEMPTS + 1):
            await self._pace()
            try:
                return await call()
            except GraphUnavailable as exc:
                wait = exc.retry_after if exc.retry_after is not None else float(2 ** (attempt - 1))
                if attempt == ATTEMPTS or wait > LONGEST_WAIT:
                    raise
                await self._sleep(wait)
        raise AssertionError("unreachable")

    async def _collection(self, path: str, params: dict[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
        """Every item of a collection, page by page; each page is paced and retried on its own."""
        link: str | None = None
        while True:
            items, link = await self._retried(functools.partial(self.graph.page, path, params, link=link))
            for item in items:
                yield item
            if link is None:
                return

    async def catalog_app_id(self) -> str:
        """The app's id in the tenant's catalog, found by its external id (the manifest's and bot's id)."""
        if not self.app_external_id:
            raise CoverageError("the app's id is unknown: set MicrosoftAppId (or SAFELINKS_COVERAGE_CATALOG_APP_ID)")
        flt = {"$filter": f"externalId eq '{_quoted(self.app_external_id)}'"}
        apps = [a async for a in self._collection("/appCatalogs/teamsApps", flt)]
        ours = [a for a in apps if a.get("distributionMethod") == "organization"] or apps
        if not ours or not isinstance(ours[0].get("id"), str):
            raise CoverageError(f"the app (external id {self.app_external_id}) is not in the tenant's app catalog: "
                                "upload the package in the Teams admin center (Teams apps → Manage apps → Upload)")
        return str(ours[0]["id"])

    async def teams(self) -> AsyncIterator[Found]:
        async for t in self._collection("/teams", {"$select": "id,displayName"}):
            if isinstance(t.get("id"), str):
                yield Found(t["id"], str(t.get("displayName") or ""))

    async def users(self) -> AsyncIterator[Found]:
        async for u in self._collection("/users", {"$select": _USER_FIELDS}):
            if _is_member(u):
                yield Found(u["id"], str(u.get("userPrincipalName") or u.get("displayName") or ""),
                            str(u.get("userPrincipalName") or ""))

    async def user(self, id_or_upn: str) -> Found | None:
        """One user by object id or UPN (``SAFELINKS_COVERAGE_USERS``); None when Graph knows none."""
        try:
            u = await self._retried(lambda: self.graph.get(f"/users/{segment(id_or_upn)}", {"$select": _USER_FIELDS}))
        except GraphRefused as exc:
            if exc.status == 404:
                return None
            raise
        if not _is_member(u):
            return None
        return Found(u["id"], str(u.get("userPrincipalName") or u.get("displayName") or ""),
                     str(u.get("userPrincipalName") or ""))

    async def members(self, group_id: str) -> AsyncIterator[Found]:
        path = f"/groups/{segment(group_id)}/transitiveMembers/microsoft.graph.user"
        async for u in self._collection(path, {"$select": _USER_FIELDS}):
            if _is_member(u):
                yield Found(u["id"], str(u.get("userPrincipalName") or u.get("displayName") or ""),
                            str(u.get("userPrincipalName") or ""))

    async def group_chats(self, user_id: str) -> AsyncIterator[Found]:
        """The user's group chats (one-on-one chats take no apps; meeting chats come and go)."""
        async for c in self._collection(f"/users/{segment(user_id)}/chats"):
            if c.get("chatType") == "group" and isinstance(c.get("id"), str):
                yield Found(c["id"], "")  # a chat's topic is not kept: its id is enough to act on

    async def installed(self, kind: Kind, target_id: str) -> bool:
        params = {"$expand": "teamsApp", "$filter": f"teamsApp/externalId eq '{_quoted(self.app_external_id)}'"}
        answer = await self._retried(lambda: self.graph.get(installed_apps_path(kind, target_id), params))
        value = answer.get("value")
        return any(isinstance(v, dict) and (v.get("teamsApp") or {}).get("externalId", "").lower()
                   == self.app_external_id.lower() for v in value) if isinstance(value, list) else False


def _is_member(u: dict[str, Any]) -> bool:
    """Enabled members of the tenant: guests and disabled accounts (rooms, shared mailboxes) take no installs."""
    return isinstance(u.get("id"), str) and u.get("accountEnabled") is not False and u.get("userType") != "Guest"
