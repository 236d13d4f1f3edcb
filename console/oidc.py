"""Sign-in with OpenID Connect (Microsoft Entra ID, Keycloak, Dex...): authorization code flow with PKCE.

The provider is found through its metadata URL. A sign-in carries a one-time ``state`` (kept in the
store, and in a short-lived cookie of this browser: a callback started in another browser is
refused), a PKCE verifier and a ``nonce``. The ID token must be signed with one of the provider's
published asymmetric keys, name this client as audience and the provider as issuer, be current and
carry the nonce. Who may act: object ids in ``SAFELINKS_ADMINS`` or the admin app role; the reader
role may look only; anyone else is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import jwt

from console.sessions import Role
from shared.config import Settings
from shared.errors import SafeLinksError
from shared.store.console_sessions import OidcState, OidcStateTable
from shared.store.database import Database

STATE_SECONDS = 600
MAX_WAITING = 10_000
_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
_METADATA_SECONDS = 3600.0
_UPN = re.compile(r"^[^@\s]+@[^@\s]+$")


class OidcError(SafeLinksError):
    """The sign-in failed; the message is safe to show the person signing in."""


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    name: str
    role: Role
    upn: str = ""  # name@domain, where the provider gave one: what a privacy request names the person by


@dataclass(frozen=True, slots=True)
class Started:
    url: str  # where to send the browser
    state: str  # to keep in this browser's cookie


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


def _upn(claims: dict[str, Any]) -> str:
    """The user principal name: Entra's ``upn`` claim, else ``preferred_username`` (Entra's v2 tokens carry the
    UPN there); none when neither is a name@domain (Keycloak and Dex may give a bare login name)."""
    for claim in ("upn", "preferred_username"):
        value = claims.get(claim)
        if isinstance(value, str) and _UPN.match(value.strip()):
            return value.strip()[:320]
    return ""


class OidcClient:
    def __init__(self, settings: Settings, db: Database, *, session: aiohttp.ClientSession | None = None) -> None:
        self._settings = settings
        self._states = OidcStateTable(db)
        self._http = session
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: dict[str, jwt.PyJWK] = {}
        self.redirect_uri = f"{settings.public_url}/console/oidc/callback"
        self.admins = {a.lower() for a in settings.admins}

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        return self._http

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with self._client().get(url) as response:
                if response.status != 200:
                    raise OidcError(f"the identity provider answered {response.status} for {url}")
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
            raise OidcError(f"the identity provider cannot be reached ({type(exc).__name__})") from None
        if not isinstance(body, dict):
            raise OidcError("the identity provider's answer is not a JSON object")
        return body

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None or time.monotonic() - self._metadata_at > _METADATA_SECONDS:
            found = await self._get_json(self._settings.console_oidc_metadata_url)
            for key in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(found.get(key), str):
                    raise OidcError(f"the identity provider's metadata lacks {key}")
            self._metadata, self._metadata_at = found, time.monotonic()
        return self._metadata

    async def start(self, *, now: float) -> Started:
        meta = await self.metadata()
        await self._states.purge_older(now - STATE_SECONDS)
        if await self._states.count() >= MAX_WAITING:  # anyone may start one: keep the table small
            raise OidcError("too many sign-ins are under way; try again in a few minutes")
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64)
        await self._states.insert(OidcState(state, verifier, nonce, now))
        query = urlencode({
            "response_type": "code", "client_id": self._settings.console_oidc_client_id,
            "redirect_uri": self.redirect_uri, "scope": self._settings.console_oidc_scopes, "state": state,
            "nonce": nonce, "code_challenge": _challenge(verifier), "code_challenge_method": "S256",
        })
        endpoint = meta["authorization_endpoint"]
        return Started(f"{endpoint}{'&' if '?' in endpoint else '?'}{query}", state)

    async def finish(self, *, code: str, state: str, browser_state: str | None, now: float) -> Identity:
        """Redeem the callback: the state once, the code for tokens, the ID token checked, the role decided."""
        if not state or not browser_state or not secrets.compare_digest(state, browser_state):
            raise OidcError("this sign-in was not started in this browser; start again")
        pending = await self._states.take(state)
        if pending is None or pending.created_at < now - STATE_SECONDS:
            raise OidcError("this sign-in is used or expired; start again")
        meta = await self.metadata()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
                "client_id": self._settings.console_oidc_client_id, "code_verifier": pending.verifier}
        secret = self._settings.console_oidc_client_secret.get_secret_value()
        if secret:
            form["client_secret"] = secret
        try:
            async with self._client().post(meta["token_endpoint"], data=form) as response:
                body = await response.json(content_type=None)
                if response.status != 200 or not isinstance(body, dict):
                    reason = body.get("error") if isinstance(body, dict) else None
                    raise OidcError(f"the identity provider refused the sign-in ({reason or response.status})")
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
            raise OidcError(f"the identity provider cannot be reached ({type(exc).__name__})") from None
        id_token = body.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("the identity provider sent no ID token")
        claims = await self._verify(id_token, meta["issuer"], pending.nonce, now)
        return self._identity(claims)

    async def _key(self, kid: str | None) -> jwt.PyJWK:
        if kid in self._keys:
            return self._keys[kid]
        jwks = await self._get_json((await self.metadata())["jwks_uri"])
        try:
            found = jwt.PyJWKSet.from_dict(jwks)
        except jwt.PyJWTError:
            raise OidcError("the identity provider's keys cannot be read") from None
        self._keys = {k.key_id: k for k in found.keys if k.key_id}
        if kid in self._keys:
            return self._keys[kid]
        if kid is None and len(found.keys) == 1:
            return found.keys[0]
        raise OidcError("the ID token is signed with a key the identity provider does not publish")

    async def _verify(self, token: str, issuer: str, nonce: str, now: float) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise OidcError("the ID token is malformed") from None
        if header.get("alg") not in _ALGORITHMS:
            raise OidcError("the ID token is not signed with an accepted algorithm")
        key = await self._key(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key=key, algorithms=_ALGORITHMS, audience=self._settings.console_oidc_client_id,
                issuer=issuer, leeway=60, options={"require": ["exp", "iat", "iss", "aud", "sub"],
                                                   "verify_iat": False, "verify_exp": False})
        except jwt.PyJWTError as exc:
            raise OidcError(f"the ID token is not valid: {exc}") from None
        # Time is checked against the service's clock (the one its sessions use), with a minute's leeway.
        if not isinstance(claims.get("exp"), int | float) or claims["exp"] + 60 < now:
            raise OidcError("the ID token has expired")
        if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            raise OidcError("the ID token does not belong to this sign-in (nonce)")
        return claims

    def _identity(self, claims: dict[str, Any]) -> Identity:
        # Entra ID's stable user id is ``oid``; other providers have only ``sub``.
        user_id = str(claims.get("oid") or claims["sub"])
        name = str(claims.get("name") or claims.get("preferred_username") or claims.get("email") or user_id)[:200]
        upn = _upn(claims)
        roles = claims.get("roles") or []
        roles = {str(r) for r in roles} if isinstance(roles, list) else set()
        if user_id.lower() in self.admins or self._settings.console_oidc_admin_role in roles:
            return Identity(user_id, name, Role.ADMIN, upn)
        if self._settings.console_oidc_reader_role in roles:
            return Identity(user_id, name, Role.READER, upn)
        raise OidcError(f"{name} has no role in this console: ask for the {self._settings.console_oidc_admin_role} "
                        f"or {self._settings.console_oidc_reader_role} app role")
