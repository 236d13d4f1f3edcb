"""The Teams app side of the Graph stand-in: the app catalog, teams, users, groups, chats and installed apps.

Served as Graph serves them to an app-only token: collections in pages of ``page_size`` with an
absolute ``@odata.nextLink`` (``$skiptoken``); each route refuses with 403 and Graph's "Missing role
permissions" words when none of its application permissions is granted (``granted``); installing
an app already there answers 409; an unknown team, chat or user 404; installing in a team or chat
an app whose manifest asks RSC permissions needs ``consentedPermissionSet`` naming them (and then a
``ReadWriteAndConsentSelf…`` permission). Failures can be injected per method and path (``fail``):
429 with Retry-After, 503. Every request is recorded in the stand-in's ``calls``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from yarl import URL

if TYPE_CHECKING:
    from tests.graph_standin import GraphStandIn

APP_ID = "5d2a4c1e-9b7f-4e3a-8c6d-0f1e2d3c4b5a"  # the app's external id: the manifest's and the bot's id
CATALOG_ID = "a1b2c3d4-0000-4111-8222-333344445555"
SCOPES = {"teams": "Team", "chats": "Chat", "users": "User"}
ALL_PERMISSIONS = frozenset({
    "AppCatalog.Read.All", "Team.ReadBasic.All", "User.Read.All", "GroupMember.Read.All", "Chat.ReadBasic.All",
    *(f"TeamsAppInstallation.ReadWrite{c}SelfFor{s}.All" for s in SCOPES.values() for c in ("", "AndConsent")),
})
RSC = {"teams": {"ChannelMessage.Read.Group"}, "chats": {"ChatMessage.Read.Chat"}, "users": set()}


@dataclass
class Teamwork:
    """A tenant: teams, users (``{"id", "userPrincipalName", "userType", "accountEnabled"}``), chats with
    their members, group members, and where the app is installed (``installed``: (scope, id) pairs)."""

    teams: dict[str, str] = field(default_factory=dict)  # group id -> display name
    users: list[dict[str, Any]] = field(default_factory=list)
    chats: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {"chatType", "members": [user ids]}
    groups: dict[str, list[str]] = field(default_factory=dict)  # group id -> member user ids
    installed: set[tuple[str, str]] = field(default_factory=set)
    catalog: list[dict[str, Any]] = field(default_factory=lambda: [
        {"id": CATALOG_ID, "externalId": APP_ID, "displayName": "Safe Links", "distributionMethod": "organization"}])
    granted: set[str] = field(default_factory=lambda: set(ALL_PERMISSIONS))
    page_size: int = 2
    failures: list[tuple[str, str, int, str | None]] = field(default_factory=list)

    def add_user(self, user_id: str, upn: str, *, guest: bool = False, enabled: bool = True) -> None:
        self.users.append({"id": user_id, "userPrincipalName": upn, "displayName": upn.split("@")[0],
                           "userType": "Guest" if guest else "Member", "accountEnabled": enabled})

    def fail(self, method: str, path: str, status: int, *, count: int = 1, retry_after: str | None = None) -> None:
        """The next ``count`` requests of ``method`` whose path starts with ``path`` answer ``status``."""
        self.failures += [(method, path, status, retry_after)] * count

    def routes(self, app: web.Application, standin: GraphStandIn) -> None:
        self._standin = standin
        get, post = app.router.add_get, app.router.add_post
        get("/v1.0/appCatalogs/teamsApps", self._catalog)
        get("/v1.0/teams", self._teams)
        get("/v1.0/users", self._users)
        get("/v1.0/users/{user}", self._user)
        get("/v1.0/groups/{group}/transitiveMembers/microsoft.graph.user", self._members)
        get("/v1.0/users/{user}/chats", self._chats_of)
        for scope, pattern in (("teams", "/v1.0/teams/{id}/installedApps"), ("chats", "/v1.0/chats/{id}/installedApps"),
                               ("users", "/v1.0/users/{id}/teamwork/installedApps")):
            get(pattern, self._listing(scope))
            post(pattern, self._installing(scope))

    # Plumbing: auth, permissions, injected failures, recording, paging.

    async def _answer(self, request: web.Request, permissions: tuple[str, ...], make: Any) -> web.Response:
        try:
            body = await request.json() if request.method == "POST" else None
        except ValueError:
            body = None
        path = request.path.removeprefix("/v1.0")

        def reply(status: int, payload: Any = None, headers: dict[str, str] | None = None) -> web.Response:
            from tests.graph_standin import GraphCall

            self._standin.calls.append(GraphCall(request.method, path, dict(request.query), body,
                                                 request.headers.get("Authorization"), status))
            if payload is None:
                return web.Response(status=status, headers=headers)
            return web.json_response(payload, status=status, headers=headers)

        if not self._standin.authorized(request.headers.get("Authorization")):
            return reply(401, {"error": {"code": "InvalidAuthenticationToken", "message": "Access token is empty."}})
        for n, (method, prefix, status, retry_after) in enumerate(self.failures):
            if method == request.method and path.startswith(prefix):
                del self.failures[n]
                code = "TooManyRequests" if status == 429 else "ServiceUnavailable"
                return reply(status, {"error": {"code": code, "message": "injected"}},
                             {"Retry-After": retry_after} if retry_after else None)
        if not self.granted & set(permissions):
            message = (f"Missing role permissions on the request. API requires one of '{', '.join(permissions)}'. "
                       f"Roles on the request '{', '.join(sorted(self.granted))}'.")
            return reply(403, {"error": {"code": "Forbidden", "message": message}})
        status, payload = make(body)
        return reply(status, payload)

    def _page(self, request: web.Request, items: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        start = int(request.query.get("$skiptoken", "0"))
        answer: dict[str, Any] = {"value": items[start:start + self.page_size]}
        if start + self.page_size < len(items):
            url = URL(self._standin.graph_url + request.path.removeprefix("/v1.0"))
            following = {**request.query, "$skiptoken": str(start + self.page_size)}
            answer["@odata.nextLink"] = str(url.with_query(following))
        return 200, answer

    def _user_by(self, name: str) -> dict[str, Any] | None:
        return next((u for u in self.users if name.lower() in (u["id"], u["userPrincipalName"].lower())), None)

    # The routes.

    async def _catalog(self, request: web.Request) -> web.Response:
        wanted = re.fullmatch(r"externalId eq '([^']*)'", request.query.get("$filter", ""))
        return await self._answer(request, ("AppCatalog.Read.All",), lambda _: self._page(
            request, [a for a in self.catalog if wanted is None or a["externalId"] == wanted.group(1)]))

    async def _teams(self, request: web.Request) -> web.Response:
        return await self._answer(request, ("Team.ReadBasic.All",), lambda _: self._page(
            request, [{"id": g, "displayName": name} for g, name in self.teams.items()]))

    async def _users(self, request: web.Request) -> web.Response:
        return await self._answer(request, ("User.Read.All",), lambda _: self._page(request, list(self.users)))

    async def _user(self, request: web.Request) -> web.Response:
        found = self._user_by(request.match_info["user"])
        return await self._answer(request, ("User.Read.All",), lambda _: (200, found) if found else (
            404, {"error": {"code": "Request_ResourceNotFound", "message": "user not found"}}))

    async def _members(self, request: web.Request) -> web.Response:
        ids = self.groups.get(request.match_info["group"])
        return await self._answer(request, ("GroupMember.Read.All",), lambda _: self._page(
            request, [u for u in self.users if u["id"] in ids]) if ids is not None else (
            404, {"error": {"code": "Request_ResourceNotFound", "message": "group not found"}}))

    async def _chats_of(self, request: web.Request) -> web.Response:
        user = request.match_info["user"]
        return await self._answer(request, ("Chat.ReadBasic.All",), lambda _: self._page(
            request, [{"id": c, "chatType": chat["chatType"], "topic": chat.get("topic")}
                      for c, chat in self.chats.items() if user in chat["members"]]))

    def _exists(self, scope: str, target: str) -> bool:
        return {"teams": target in self.teams, "chats": target in self.chats,
                "users": self._user_by(target) is not None}[scope]

    def _listing(self, scope: str) -> Any:
        permissions = tuple(f"TeamsAppInstallation.ReadWrite{c}SelfFor{SCOPES[scope]}.All" for c in ("", "AndConsent"))

        async def handler(request: web.Request) -> web.Response:
            target = request.match_info["id"]
            wanted = re.fullmatch(r"teamsApp/externalId eq '([^']*)'", request.query.get("$filter", ""))

            def make(_: Any) -> tuple[int, Any]:
                if not self._exists(scope, target):
                    return 404, {"error": {"code": "NotFound", "message": f"{scope[:-1]} not found"}}
                apps = [{"id": f"inst-{target}", "teamsApp": {"id": a["id"], "externalId": a["externalId"]}}
                        for a in self.catalog if (scope, target) in self.installed]
                return self._page(request, [a for a in apps if wanted is None
                                            or a["teamsApp"]["externalId"] == wanted.group(1)])

            return await self._answer(request, permissions, make)

        return handler

    def _installing(self, scope: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            target = request.match_info["id"]
            try:
                body = await request.json()
            except ValueError:
                body = {}
            consent = (body or {}).get("consentedPermissionSet")
            kinds = ("AndConsent",) if consent else ("", "AndConsent")
            permissions = tuple(f"TeamsAppInstallation.ReadWrite{c}SelfFor{SCOPES[scope]}.All" for c in kinds)

            def make(body: Any) -> tuple[int, Any]:
                bind = str((body or {}).get("teamsApp@odata.bind", ""))
                if not bind.startswith(self._standin.graph_url + "/appCatalogs/teamsApps/"):
                    return 400, {"error": {"code": "BadRequest", "message": "teamsApp@odata.bind is required"}}
                if bind.rsplit("/", 1)[1] not in {a["id"] for a in self.catalog}:
                    return 404, {"error": {"code": "NotFound", "message": "app not found in the catalog"}}
                if not self._exists(scope, target):
                    return 404, {"error": {"code": "NotFound", "message": f"{scope[:-1]} not found"}}
                given = {p.get("permissionValue") for p in (consent or {}).get("resourceSpecificPermissions", [])}
                if RSC[scope] - given:
                    return 403, {"error": {"code": "Forbidden", "message": "the app requires consent for "
                                           "resource-specific permissions: " + ", ".join(sorted(RSC[scope]))}}
                if (scope, target) in self.installed:
                    return 409, {"error": {"code": "Conflict", "message": "App is already installed."}}
                self.installed.add((scope, target))
                return 201, None

            return await self._answer(request, permissions, make)

        return handler
