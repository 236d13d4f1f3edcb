"""A local OpenID Connect provider for the console's sign-in tests: discovery, authorize, token, JWKS.

It plays a provider whose user has already signed in: ``/authorize`` sends the browser straight back
with a code. It checks what a real provider checks (client, redirect URI, PKCE S256, single-use
codes) and can be told to misbehave (``tamper``) so the console's refusals can be tested.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "console-client"
CLIENT_SECRET = "console-secret-0123456789-abcdefghijkl"


@dataclass
class OidcStandIn:
    port: int
    claims: dict[str, Any] = field(default_factory=lambda: {
        "oid": "aad-0007", "sub": "sub-7", "name": "Sam Analyst", "roles": ["SafeLinks.Admin"]})
    tamper: str | None = None  # nonce, audience, issuer, expired, foreign-key, alg-hs256
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}/realm"

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/realm/.well-known/openid-configuration", self._metadata)
        app.router.add_get("/realm/authorize", self._authorize)
        app.router.add_post("/realm/token", self._token)
        app.router.add_get("/realm/jwks", self._jwks)
        return app

    async def _metadata(self, request: web.Request) -> web.Response:
        return web.json_response({
            "issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"], "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"]})

    async def _authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
            return web.Response(status=400, text="bad client or response type")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return web.Response(status=400, text="PKCE S256 required")
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"challenge": q["code_challenge"], "nonce": q.get("nonce", ""),
                            "redirect_uri": q["redirect_uri"]}
        raise web.HTTPFound(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q.get('state', '')})}")

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.token_requests.append({k: str(v) for k, v in form.items()})
        grant = self.codes.pop(str(form.get("code", "")), None)
        if grant is None:
            return web.json_response({"error": "invalid_grant"}, status=400)
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != grant["challenge"] or form.get("redirect_uri") != grant["redirect_uri"]:
            return web.json_response({"error": "invalid_grant"}, status=400)
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response({"access_token": "at", "token_type": "Bearer", "id_token": self._id_token(grant)})

    def _id_token(self, grant: dict[str, str]) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 3600, "nonce": grant["nonce"],
                  **self.claims}
        if self.tamper == "nonce":
            claims["nonce"] = "another-sign-in"
        elif self.tamper == "audience":
            claims["aud"] = "some-other-app"
        elif self.tamper == "issuer":
            claims["iss"] = "http://127.0.0.1:1/evil"
        elif self.tamper == "expired":
            claims["exp"] = 1_000_000_000
        if self.tamper == "alg-hs256":
            return jwt.encode(claims, CLIENT_SECRET, algorithm="HS256", headers={"kid": "k1"})
        key = self.other_key if self.tamper == "foreign-key" else self.key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})

    async def _jwks(self, request: web.Request) -> web.Response:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return web.json_response({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]})
