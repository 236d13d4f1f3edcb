"""A Teams stand-in for the bot tests: Bot Framework's token side and the Bot Connector v3, on loopback.

It serves OpenID metadata and a JWKS whose key is endorsed for ``msteams`` (so activities signed with
its RSA key pass the SDK's real token validation), a client-credentials token endpoint, and the
connector routes the bot calls: post, reply, update, create conversation (a new channel thread),
one member and paged members. Every call is recorded; answers can be made to fail (429 with
Retry-After, 412, 5xx) on demand. It runs on its own thread and event loop, because the SDK fetches
signing keys with blocking ``requests`` calls from inside the bot's loop.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://api.botframework.com"
APP_ID = "9a1c7e55-3f5e-4b8e-9d0a-5b6a7f3c2d10"
APP_PASSWORD = "stand-in-secret"
TENANT = "6f2c1b4a-0d3e-4c5f-8a9b-1c2d3e4f5a6b"
BOT_ID = f"28:{APP_ID}"


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class Call:
    """One request the bot made to the stand-in."""

    method: str
    path: str
    conversation_id: str | None
    activity_id: str | None
    body: Any
    authorization: str | None
    status: int
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Failure:
    status: int
    retry_after: str | None
    count: int
    only: str | None


@dataclass
class TeamsStandIn:
    members: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    tokens_issued: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rogue_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid, self.unendorsed_kid = "standin-key", "standin-unendorsed"
        self.instance = secrets.token_hex(8)
        self._failures: list[_Failure] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # Lifecycle (its own thread and loop).

    def start(self) -> TeamsStandIn:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the Teams stand-in did not start")
        return self

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop

        async def up() -> None:
            self._runner = web.AppRunner(self._app())
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()

        loop.run_until_complete(up())
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup() if self._runner else asyncio.sleep(0))
        loop.close()

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def service_url(self) -> str:
        return self.url + "/"

    @property
    def metadata_url(self) -> str:
        # Unique per stand-in: the SDK caches signing keys per metadata URL for the whole process, so a
        # later stand-in on a reused port would otherwise be judged with an earlier one's key (a 401).
        return f"{self.url}/v1/.well-known/openidconfiguration?instance={self.instance}"

    @property
    def login_url(self) -> str:
        return f"{self.url}/{TENANT}"

    def bot_settings(self) -> dict[str, Any]:
        """Settings for a bot that authenticates against this stand-in."""
        return {
            "microsoft_app_id": APP_ID, "microsoft_app_password": APP_PASSWORD,
            "microsoft_app_type": "SingleTenant", "microsoft_app_tenant_id": TENANT,
            "to_bot_from_channel_openid_metadata_url": self.metadata_url,
            "to_bot_from_channel_token_issuer": ISSUER, "to_channel_from_bot_login_url": self.login_url,
            # The stand-in is the connector an authenticated bot may call (besides Teams' own endpoints).
            "bot_service_urls": self.service_url,
        }

    # Tokens.

    def token(self, *, audience: str = APP_ID, issuer: str = ISSUER, service_url: str | None = None,
              expires_in: int = 3600, key: str = "endorsed") -> str:
        """A channel token like the Bot Framework's, signed with the endorsed key unless told otherwise."""
        now = int(time.time())
        claims = {"iss": issuer, "aud": audience, "serviceurl": service_url or self.service_url,
                  "nbf": now - 60, "iat": now - 60, "exp": now + expires_in}
        signer, kid = {"endorsed": (self.key, self.kid), "unendorsed": (self.key, self.unendorsed_kid),
                       "rogue": (self.rogue_key, self.kid)}[key]
        return jwt.encode(claims, signer, algorithm="RS256", headers={"kid": kid})

    # Failure injection.

    def fail_next(self, status: int, *, count: int = 1, retry_after: str | None = None,
                  only: str | None = None) -> None:
        """The next ``count`` connector writes (whose path holds ``only``, if given) answer ``status``."""
        with self._lock:
            self._failures.append(_Failure(status, retry_after, count, only))

    def _take_failure(self, path: str) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.count > 0 and (failure.only is None or failure.only in path):
                    failure.count -= 1
                    return failure
        return None

    # Observation.

    def writes(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method in (("POST", "PUT") if method is None else (method,))
                    and "/v3/" in c.path and "members" not in c.path]

    def delivered(self, method: str | None = None) -> list[Call]:
        return [c for c in self.writes(method) if c.status < 300]

    async def wait_for(self, predicate: Callable[[TeamsStandIn], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"the stand-in did not see it in {timeout}s; calls: {self.calls}")
            await asyncio.sleep(0.02)

    # The application.

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/.well-known/openidconfiguration", self._metadata)
        app.router.add_get("/v1/keys", self._keys)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_post("/v3/conversations", self._create)
        app.router.add_post("/v3/conversations/{conversation}/activities", self._post)
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", self._post)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._put)
        app.router.add_get("/v3/conversations/{conversation}/members/{member}", self._member)
        app.router.add_get("/v3/conversations/{conversation}/pagedmembers", self._paged)
        return app

    async def _metadata(self, request: web.Request) -> web.Response:
        return web.json_response({"issuer": ISSUER, "jwks_uri": self.url + "/v1/keys",
                                  "id_token_signing_alg_values_supported": ["RS256"]})

    async def _keys(self, request: web.Request) -> web.Response:
        def jwk(kid: str, endorsements: list[str]) -> dict[str, Any]:
            numbers = self.key.public_key().public_numbers()
            return {"kty": "RSA", "use": "sig", "kid": kid, "n": _b64(numbers.n), "e": _b64(numbers.e),
                    "endorsements": endorsements}

        return web.json_response({"keys": [jwk(self.kid, ["msteams", "webchat"]), jwk(self.unendorsed_kid, ["skype"])]})

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.tokens_issued.append({k: str(v) for k, v in form.items()})
        if form.get("client_id") != APP_ID or form.get("client_secret") != APP_PASSWORD:
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response({"access_token": f"bot-token-{len(self.tokens_issued)}", "expires_in": 3600,
                                  "token_type": "Bearer"})

    async def _record(self, request: web.Request, status: int, body: Any = None) -> None:
        with self._lock:
            self.calls.append(Call(request.method, request.path, request.match_info.get("conversation"),
                                   request.match_info.get("activity"), body,
                                   request.headers.get("Authorization"), status))

    async def _write(self, request: web.Request, answer: Callable[[Any], dict[str, Any]]) -> web.Response:
        body = await request.json()
        failure = self._take_failure(request.path)
        if failure is not None:
            await self._record(request, failure.status, body)
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            return web.json_response({"error": {"code": "Throttled" if failure.status == 429 else "Failed",
                                                "message": "injected"}}, status=failure.status, headers=headers)
        await self._record(request, 201 if request.method == "POST" else 200, body)
        return web.json_response(answer(body), status=201 if request.method == "POST" else 200)

    def _new_id(self) -> str:
        return f"17{next(self._ids):011d}"

    async def _post(self, request: web.Request) -> web.Response:
        return await self._write(request, lambda _: {"id": self._new_id()})

    async def _put(self, request: web.Request) -> web.Response:
        return await self._write(request, lambda _: {"id": request.match_info["activity"]})

    async def _create(self, request: web.Request) -> web.Response:
        def answer(body: Any) -> dict[str, Any]:
            channel = ((body.get("channelData") or {}).get("channel") or {}).get("id", "19:unknown")
            activity_id = self._new_id()
            return {"id": f"{channel};messageid={activity_id}", "activityId": activity_id}

        return await self._write(request, answer)

    async def _member(self, request: web.Request) -> web.Response:
        await self._record(request, 200)
        for member in self.members.get(request.match_info["conversation"], []):
            if member["id"] == request.match_info["member"]:
                return web.json_response(member)
        return web.json_response({"error": {"code": "MemberNotFoundInConversation"}}, status=404)

    async def _paged(self, request: web.Request) -> web.Response:
        await self._record(request, 200)
        members = self.members.get(request.match_info["conversation"], [])
        size = int(request.query.get("pageSize", "50"))
        answer: dict[str, Any] = {"members": members[:size]}
        if len(members) > size:
            answer["continuationToken"] = "more"
        return web.json_response(answer)


def user(n: int, *, tenant: str = TENANT, name: str | None = None) -> dict[str, Any]:
    """A member as the connector describes one."""
    label = name or f"User {n}"
    first = label.split()[0].lower()
    return {"id": f"29:user-{n}", "name": label, "aadObjectId": f"aad-{n:04d}",
            "userPrincipalName": f"{first}{n}@contoso.example", "email": f"{first}{n}@contoso.example",
            "tenantId": tenant, "userRole": "user"}


# Activity shapes as Teams sends them.

TEAM_ID = "19:team-general@thread.tacv2"
CHANNEL_ID = "19:c0ffee@thread.tacv2"
GROUP_CHAT_ID = "19:meeting_group@thread.v2"
PERSONAL_ID = "a:1personal-chat"
_BOT = {"id": BOT_ID, "name": "Safe Links"}


def _base(kind: str, service_url: str, conversation: dict[str, Any], sender: dict[str, Any],
          channel_data: dict[str, Any], activity_id: str) -> dict[str, Any]:
    return {
        "type": kind, "id": activity_id, "timestamp": "2026-11-01T12:00:00.123Z", "serviceUrl": service_url,
        "channelId": "msteams", "from": sender, "conversation": conversation, "recipient": dict(_BOT),
        "locale": "en-US", "channelData": channel_data,
        "entities": [{"type": "clientInfo", "locale": "en-US", "country": "GB", "platform": "Web"}],
    }


def sender_of(member: dict[str, Any]) -> dict[str, Any]:
    return {"id": member["id"], "name": member["name"], "aadObjectId": member["aadObjectId"]}


def channel_post(service_url: str, sender: dict[str, Any], text: str, *, activity_id: str = "1730462400001",
                 mention: bool = False, html: str | None = None, root: str | None = None) -> dict[str, Any]:
    """A channel message (a root post, or a reply in the thread of ``root``)."""
    conversation = {"isGroup": True, "conversationType": "channel", "tenantId": TENANT,
                    "id": f"{CHANNEL_ID};messageid={root or activity_id}"}
    channel_data = {"teamsChannelId": CHANNEL_ID, "teamsTeamId": TEAM_ID, "channel": {"id": CHANNEL_ID},
                    "team": {"id": TEAM_ID}, "tenant": {"id": TENANT}}
    activity = _base("message", service_url, conversation, sender, channel_data, activity_id)
    if mention:
        text = f"<at>Safe Links</at> {text}"
        activity["entities"].append({"type": "mention", "text": "<at>Safe Links</at>", "mentioned": dict(_BOT)})
    activity.update(text=text, textFormat="plain")
    if html is not None:
        activity["attachments"] = [{"contentType": "text/html", "content": html}]
    if root:
        activity["replyToId"] = root
    return activity


def group_chat_message(service_url: str, sender: dict[str, Any], text: str, *, activity_id: str = "1730462400101",
                       mention: bool = False, text_format: str = "plain") -> dict[str, Any]:
    conversation = {"isGroup": True, "conversationType": "groupChat", "tenantId": TENANT, "id": GROUP_CHAT_ID}
    activity = _base("message", service_url, conversation, sender, {"tenant": {"id": TENANT}}, activity_id)
    if mention:
        text = f"<at>Safe Links</at> {text}"
        activity["entities"].append({"type": "mention", "text": "<at>Safe Links</at>", "mentioned": dict(_BOT)})
    activity.update(text=text, textFormat=text_format)
    return activity


def personal_message(service_url: str, sender: dict[str, Any], text: str, *,
                     activity_id: str = "1730462400201", attachments: list[dict[str, Any]] | None = None
                     ) -> dict[str, Any]:
    conversation = {"conversationType": "personal", "tenantId": TENANT, "id": PERSONAL_ID}
    activity = _base("message", service_url, conversation, sender, {"tenant": {"id": TENANT}}, activity_id)
    activity.update(text=text, textFormat="plain")
    if attachments:
        activity["attachments"] = attachments
    return activity


def edited(activity: dict[str, Any], text: str) -> dict[str, Any]:
    changed = dict(activity, type="messageUpdate", text=text)
    changed["channelData"] = dict(activity["channelData"], eventType="editMessage")
    changed.pop("attachments", None)
    return changed


def soft_deleted(activity: dict[str, Any]) -> dict[str, Any]:
    gone = {k: v for k, v in activity.items() if k not in ("text", "attachments", "textFormat")}
    gone["type"] = "messageDelete"
    gone["channelData"] = dict(activity["channelData"], eventType="softDeleteMessage")
    return gone


def installed(service_url: str, installer: dict[str, Any], *, scope: str = "team", action: str = "add"
              ) -> dict[str, Any]:
    """An ``installationUpdate`` for a team (into its General channel), a group chat or a personal chat."""
    if scope == "team":
        conversation = {"isGroup": True, "conversationType": "channel", "tenantId": TENANT, "id": TEAM_ID}
        channel_data = {"team": {"id": TEAM_ID, "name": "Contoso Security"}, "channel": {"id": TEAM_ID},
                        "tenant": {"id": TENANT}, "source": {"name": "message"}}
    elif scope == "groupChat":
        conversation = {"isGroup": True, "conversationType": "groupChat", "tenantId": TENANT, "id": GROUP_CHAT_ID}
        channel_data = {"tenant": {"id": TENANT}}
    else:
        conversation = {"conversationType": "personal", "tenantId": TENANT, "id": PERSONAL_ID}
        channel_data = {"tenant": {"id": TENANT}}
    activity = _base("installationUpdate", service_url, conversation, installer, channel_data, "f:install-1")
    activity["action"] = action
    return activity


def card_action(service_url: str, viewer: dict[str, Any], verb: str, data: dict[str, Any], *,
                conversation_id: str = GROUP_CHAT_ID, reply_to: str = "1700000000001",
                trigger: str = "automatic") -> dict[str, Any]:
    conversation = {"isGroup": True, "conversationType": "groupChat", "tenantId": TENANT, "id": conversation_id}
    activity = _base("invoke", service_url, conversation, viewer, {"tenant": {"id": TENANT}}, "f:invoke-1")
    activity.update(name="adaptiveCard/action", replyToId=reply_to,
                    value={"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": trigger})
    return activity


class BotHarness:
    """The running application (proxy and bot) on loopback, and a way to post activities to it."""

    def __init__(self, client: Any, app: Any) -> None:
        self.client = client
        self.app = app

    async def post(self, activity: dict[str, Any], token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.client.post("/api/messages", json=activity, headers=headers)

    @property
    def services(self) -> Any:
        from shared.services import SERVICES

        return self.app[SERVICES]

    async def rows(self, table: str) -> list[dict[str, Any]]:
        return await self.services.db.fetchall(f"SELECT * FROM {table}")


@asynccontextmanager
async def running_bot(settings: Any, *, port: int | None = None, **app_options: Any) -> AsyncIterator[BotHarness]:
    from aiohttp.test_utils import TestClient, TestServer

    from safelinks.server import create_app

    app = create_app(settings, **app_options)
    client = TestClient(TestServer(app, host="127.0.0.1", port=port))
    await client.start_server()
    try:
        yield BotHarness(client, app)
    finally:
        await client.close()
