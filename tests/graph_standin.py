"""A Microsoft Graph stand-in: Entra's token endpoint, the chatMessage PATCH routes (quarantine) and, in
``tests/graph_teamwork.py``, the app catalog, directory and installed-app routes (coverage).

It issues client-credentials tokens (a client secret, or a certificate assertion checked against
the registered certificate's key and thumbprint), and answers ``PATCH`` on chat messages, channel
messages and channel replies the way Graph does with application permissions: only
``policyViolation`` may change, a message from another organisation answers 403, an unknown one 404.
Every request is recorded; answers can be made to fail (429 with Retry-After, 503) on demand.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import Certificate

from tests.graph_teamwork import Teamwork

GRAPH_TENANT = "6f2c1b4a-0d3e-4c5f-8a9b-1c2d3e4f5a6b"
CLIENT_ID = "3c5e9d21-7a4b-4f0e-9b8c-2d1e0f9a8b7c"
CLIENT_SECRET = "graph-stand-in-secret"
_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class GraphCall:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorization: str | None
    status: int
    at: float = field(default_factory=time.monotonic)


@dataclass
class GraphStandIn:
    """Messages by Graph path (``/chats/{c}/messages/{m}`` …): ``{"external": bool, "policyViolation": …}``."""

    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[GraphCall] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    teamwork: Teamwork = field(default_factory=Teamwork)
    certificate: Certificate | None = None
    token_lifetime: int = 3600
    server: TestServer | None = None

    def __post_init__(self) -> None:
        self._failures: list[tuple[int, str | None]] = []
        self._tokens: set[str] = set()
        self._ids = itertools.count(1)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"

    @property
    def graph_url(self) -> str:
        return self.url + "/v1.0"

    @property
    def token_url(self) -> str:
        return f"{self.url}/{GRAPH_TENANT}/oauth2/v2.0/token"

    def settings(self) -> dict[str, Any]:
        return {"graph_url": self.graph_url, "graph_token_url": self.token_url, "graph_client_id": CLIENT_ID,
                "graph_client_secret": CLIENT_SECRET, "graph_tenant_id": GRAPH_TENANT}

    def add_message(self, path: str, *, external: bool = False) -> None:
        self.messages[path] = {"external": external, "policyViolation": None}

    def fail_next(self, status: int, *, count: int = 1, retry_after: str | None = None) -> None:
        self._failures += [(status, retry_after)] * count

    def patches(self) -> list[GraphCall]:
        return [c for c in self.calls if c.method == "PATCH"]

    async def wait_for(self, predicate: Callable[[GraphStandIn], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"the Graph stand-in did not see it in {timeout}s; calls: {self.calls}")
            await asyncio.sleep(0.02)

    # The application.

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_patch("/v1.0/chats/{chat}/messages/{message}", self._patch)
        app.router.add_patch("/v1.0/teams/{team}/channels/{channel}/messages/{message}", self._patch)
        app.router.add_patch("/v1.0/teams/{team}/channels/{channel}/messages/{root}/replies/{message}", self._patch)
        self.teamwork.routes(app, self)
        return app

    def authorized(self, authorization: str | None) -> bool:
        return bool(authorization) and (authorization or "").removeprefix("Bearer ") in self._tokens

    def _client_ok(self, form: dict[str, str]) -> bool:
        if form.get("client_id") != CLIENT_ID:
            return False
        if form.get("client_assertion_type") == _ASSERTION and self.certificate is not None:
            thumb = base64.urlsafe_b64encode(self.certificate.fingerprint(hashes.SHA1())).rstrip(b"=").decode()
            try:
                header = jwt.get_unverified_header(form.get("client_assertion", ""))
                claims = jwt.decode(form["client_assertion"], self.certificate.public_key(),  # type: ignore[arg-type]
                                    algorithms=["RS256"], audience=self.token_url)
            except (jwt.PyJWTError, KeyError):
                return False
            return header.get("x5t") == thumb and claims.get("iss") == CLIENT_ID and claims.get("sub") == CLIENT_ID
        return form.get("client_secret") == CLIENT_SECRET

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.token_requests.append(form)
        if request.match_info["tenant"] != GRAPH_TENANT:
            return web.json_response({"error": "invalid_tenant"}, status=400)
        if not self._client_ok(form):
            return web.json_response({"error": "invalid_client", "error_description": "bad credentials"}, status=401)
        if form.get("grant_type") != "client_credentials" or form.get("scope") != self.url + "/.default":
            return web.json_response({"error": "invalid_scope"}, status=400)
        token = f"graph-token-{next(self._ids)}"
        self._tokens.add(token)
        return web.json_response({"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"})

    async def _patch(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        path = request.path.removeprefix("/v1.0")
        auth = request.headers.get("Authorization")

        def answer(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
            self.calls.append(GraphCall("PATCH", path, dict(request.query), body, auth, status))
            return web.json_response(payload, status=status, headers=headers)

        if not auth or auth.removeprefix("Bearer ") not in self._tokens:
            return answer(401, {"error": {"code": "InvalidAuthenticationToken", "message": "Access token is empty."}})
        if self._failures:
            status, retry_after = self._failures.pop(0)
            return answer(status, {"error": {"code": "TooManyRequests" if status == 429 else "ServiceUnavailable",
                                             "message": "injected"}},
                          {"Retry-After": retry_after} if retry_after else None)
        if not isinstance(body, dict) or set(body) != {"policyViolation"}:
            refusal = "only policyViolation may be changed with application permissions"
            return answer(400, {"error": {"code": "BadRequest", "message": refusal}})
        message = self.messages.get(path)
        if message is None:
            return answer(404, {"error": {"code": "NotFound", "message": "message not found"}})
        if message["external"]:
            return answer(403, {"error": {"code": "Forbidden",
                                          "message": "policyViolation cannot be set on a message from another tenant"}})
        message["policyViolation"] = body["policyViolation"]
        return answer(200, {"id": request.match_info["message"], "policyViolation": body["policyViolation"]})


@asynccontextmanager
async def graph_standin(**options: Any) -> AsyncIterator[GraphStandIn]:
    standin = GraphStandIn(**options)
    standin.server = TestServer(standin.app(), host="127.0.0.1")
    await standin.server.start_server()
    try:
        yield standin
    finally:
        await standin.server.close()
