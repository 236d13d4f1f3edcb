"""An app-only access token for Graph: OAuth 2.0 client credentials, with a secret or a certificate.

The token is kept until five minutes before it expires and fetched by one caller at a time, so a
burst of Graph calls asks the token endpoint once. The endpoint is configurable (sovereign clouds,
tests). With a certificate the client proves itself with a signed assertion (RFC 7523), as Entra
expects: RS256 over ``aud``/``iss``/``sub``/``jti``/``nbf``/``exp``, with the certificate's SHA-1
thumbprint as ``x5t``.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from shared.graph.errors import GraphError, GraphRefused, GraphUnavailable, retry_after_seconds

_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_MARGIN = 300.0


@dataclass(frozen=True, slots=True)
class Certificate:
    """A private key and the thumbprint of its certificate, read from one PEM file."""

    key: RSAPrivateKey
    thumbprint: str  # base64url SHA-1 of the DER certificate (x5t)

    @classmethod
    def load(cls, path: Path) -> Certificate:
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise GraphError(f"cannot read the Graph certificate {path}: {exc.strerror}") from exc
        try:
            key = serialization.load_pem_private_key(pem, password=None)
            cert = x509.load_pem_x509_certificate(pem)
        except (ValueError, TypeError) as exc:
            raise GraphError(f"{path} must hold an unencrypted RSA private key and its certificate (PEM)") from exc
        if not isinstance(key, RSAPrivateKey):
            raise GraphError(f"{path}: the private key must be RSA")
        digest = cert.fingerprint(hashes.SHA1())
        return cls(key, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


class ClientCredentials:
    """Tokens for ``scope`` from ``token_url`` for ``client_id``, with a secret or a certificate."""

    def __init__(self, token_url: str, client_id: str, *, scope: str, secret: str = "",
                 certificate: Certificate | None = None) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.scope = scope
        self._secret = secret
        self._certificate = certificate
        self._token = ""
        self._expires = 0.0
        self._lock = asyncio.Lock()

    def _credentials(self) -> dict[str, str]:
        if self._certificate is not None:
            now = int(time.time())
            claims = {"aud": self.token_url, "iss": self.client_id, "sub": self.client_id,
                      "jti": uuid.uuid4().hex, "nbf": now - 60, "iat": now, "exp": now + 600}
            assertion = jwt.encode(claims, self._certificate.key, algorithm="RS256",
                                   headers={"x5t": self._certificate.thumbprint})
            return {"client_assertion_type": _ASSERTION_TYPE, "client_assertion": assertion}
        return {"client_secret": self._secret}

    def forget(self) -> None:
        """Drop the cached token (Graph answered 401: it may have been revoked)."""
        self._token, self._expires = "", 0.0

    async def token(self, session: aiohttp.ClientSession) -> str:
        async with self._lock:
            if self._token and time.time() < self._expires - _MARGIN:
                return self._token
            if not self.client_id or not (self._secret or self._certificate):
                raise GraphRefused("no Graph credentials: set SAFELINKS_GRAPH_CLIENT_ID and a secret or certificate")
            form = {"grant_type": "client_credentials", "client_id": self.client_id, "scope": self.scope,
                    **self._credentials()}
            body = await self._post(session, form)
            token = body.get("access_token")
            if not isinstance(token, str) or not token:
                raise GraphUnavailable(f"token endpoint {self.token_url} answered without an access_token")
            try:
                lifetime = float(body.get("expires_in", 3600))
            except (TypeError, ValueError):
                lifetime = 3600.0
            self._token, self._expires = token, time.time() + lifetime
            return token

    async def _post(self, session: aiohttp.ClientSession, form: dict[str, str]) -> dict[str, Any]:
        try:
            async with session.post(self.token_url, data=form) as response:
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
                status = response.status
                wait = retry_after_seconds(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GraphUnavailable(f"token endpoint {self.token_url} unreachable: {type(exc).__name__}: {exc}") from exc
        if not isinstance(body, dict):
            body = {}
        if status == 200:
            return body
        code = str(body.get("error") or status)
        detail = str(body.get("error_description") or "")[:300]
        message = f"token endpoint {self.token_url} answered {status} {code}" + (f": {detail}" if detail else "")
        if status == 429 or status >= 500:
            raise GraphUnavailable(message, status=status, code=code, retry_after=wait)
        raise GraphRefused(message, status=status, code=code)
