"""Signed wrapped links: ``{public_url}/v1/url?url=<original>&data=<context>&sig=<mac>``.

The original URL stays readable in the link, as in Safe Links. ``data`` is the click context (workload,
tenant, Teams message reference, sender, recipient, issue time, key id) as base64url JSON, and ``sig``
is HMAC-SHA256 over ``url`` and ``data``. Several keys may be configured with one active, so keys
rotate without breaking links already sent. Nothing without a valid signature is ever redirected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import string
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from shared.clicks import Workload
from shared.errors import ConfigError, SafeLinksError
from shared.linkparams import BadLink, parse_link_query
from shared.urls import URLError, parse

WRAP_PATH = "/v1/url"
_MIN_KEY_BYTES = 16
# Key ids travel inside tokens and link contexts next to separators ("." in click-through tokens, ":" and
# "," in SAFELINKS_SIGNING_KEYS): only characters that are none of them, in any of those places.
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
# Each UTF-8 byte of the wrapped URL as ``quote(url, safe="")`` writes it, looked up instead of built
# per byte (``quote`` was a fifth of the cost of a wrap).
_UNRESERVED = frozenset((string.ascii_letters + string.digits + "_.-~").encode())
_PERCENT_ENCODED = tuple(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in range(256))
# json.dumps builds a new encoder per call when given options: one is made once instead.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


class SigningError(SafeLinksError):
    """Base of the signing errors."""


class KeyConfigError(SigningError, ConfigError):
    """The configured signing keys are unusable."""

    setting = "SAFELINKS_SIGNING_KEYS"


def b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class LinkContext:
    """Who the link was made for and where it was shown. Short keys keep the link short."""

    workload: Workload = Workload.TEAMS
    tenant: str | None = None
    team: str | None = None
    channel: str | None = None
    conversation: str | None = None
    message: str | None = None
    sender: str | None = None
    recipient: str | None = None
    recipient_id: str | None = None
    issued_at: int = 0
    key_id: str = ""

    _SHORT = {
        "workload": "w",
        "tenant": "t",
        "team": "tm",
        "channel": "ch",
        "conversation": "c",
        "message": "m",
        "sender": "s",
        "recipient": "r",
        "recipient_id": "ri",
        "issued_at": "i",
        "key_id": "k",
    }

    def encode(self) -> str:
        return self.encode_issued(self.issued_at, self.key_id)

    def encode_issued(self, issued_at: int, key_id: str) -> str:
        """``encode`` of this context issued at ``issued_at`` under ``key_id``, without making that context."""
        # getattr per field, not dataclasses.asdict: asdict deep-copies and was half the cost of a wrap.
        values = {short: v for k, short in self._SHORT.items() if (v := getattr(self, k)) not in (None, "")}
        values["w"] = self.workload.value
        # The issue time and key id come last in _SHORT: set here, they keep their place.
        values.pop("i", None)
        values.pop("k", None)
        values["i"] = issued_at
        if key_id:
            values["k"] = key_id
        return b64e(_COMPACT_JSON.encode(values).encode("utf-8"))

    @classmethod
    def decode(cls, data: str) -> LinkContext:
        try:
            raw = json.loads(b64d(data).decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise SigningError("the link's context is not readable") from exc
        if not isinstance(raw, dict):
            raise SigningError("the link's context is not readable")
        long = {v: k for k, v in cls._SHORT.items()}
        kwargs: dict[str, Any] = {}
        for short, value in raw.items():
            name = long.get(short)
            if name is None:
                continue
            if name == "workload":
                value = Workload.parse(str(value))
            elif name == "issued_at":
                value = int(value)
            else:
                value = str(value)
            kwargs[name] = value
        return cls(**kwargs)

    def issued(self) -> datetime | None:
        return datetime.fromtimestamp(self.issued_at, UTC) if self.issued_at else None


class LinkStatus(StrEnum):
    VALID = "valid"
    TAMPERED = "tampered"
    UNKNOWN_KEY = "unknown key"
    MALFORMED = "malformed"
    NOT_OURS = "not a wrapped link"


@dataclass(frozen=True, slots=True)
class DecodedLink:
    status: LinkStatus
    url: str | None
    context: LinkContext | None
    detail: str = ""


class Keyring:
    """The signing keys: one active for new links, all of them accepted on old ones."""

    def __init__(self, keys: dict[str, bytes], active: str) -> None:
        if active not in keys:
            raise KeyConfigError(f"active signing key {active!r} is not among the configured keys")
        for kid, key in keys.items():
            if len(key) < _MIN_KEY_BYTES:
                raise KeyConfigError(f"signing key {kid!r} is shorter than {_MIN_KEY_BYTES} bytes")
            if not _KEY_ID.fullmatch(kid):
                raise KeyConfigError(f"signing key id {kid[:40]!r} must be 1-32 letters, digits, '_' or '-'")
        self._keys = dict(keys)
        self.active = active
        self._derived: dict[tuple[str, str], bytes] = {}

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    def key(self, kid: str) -> bytes | None:
        return self._keys.get(kid)

    def derived(self, purpose: str, kid: str | None = None) -> bytes:
        """A separate key per purpose, so a MAC made for one thing never verifies as another."""
        slot = (purpose, kid or self.active)
        key = self._derived.get(slot)
        if key is None:  # derived once per key and purpose, not on every warning page
            key = self._derived[slot] = hmac.new(self._keys[slot[1]], purpose.encode("ascii"), hashlib.sha256).digest()
        return key

    @classmethod
    def parse(cls, spec: str, active: str = "") -> Keyring:
        """Keys from ``kid:secret,kid2:secret2``; secrets in hex or base64url."""
        keys: dict[str, bytes] = {}
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            kid, sep, secret = part.partition(":")
            if not sep or not secret:
                raise KeyConfigError(f"signing key {part[:8]}… must look like kid:secret")
            keys[kid.strip()] = _decode_secret(secret.strip())
        if not keys:
            raise KeyConfigError("no signing keys given")
        return cls(keys, active or next(iter(keys)))


def _decode_secret(secret: str) -> bytes:
    try:
        if len(secret) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in secret):
            return bytes.fromhex(secret)
        return b64d(secret)
    except ValueError as exc:
        raise KeyConfigError("a signing key secret is neither hex nor base64url") from exc


def _mac(key: bytes, url: str, data: str) -> str:
    # Length-prefix the URL so no split of url+data collides with another split.
    msg = f"{len(url)}:{url}|{data}".encode()
    return b64e(hmac.digest(key, msg, "sha256"))


class LinkSigner:
    """Makes and checks wrapped links for one public base URL."""

    def __init__(self, keyring: Keyring, public_url: str) -> None:
        self.keyring = keyring
        self.public_url = public_url.rstrip("/")
        self._prefix = self.public_url + WRAP_PATH + "?"
        self._last_data: tuple[LinkContext | None, int, str, str] = (None, 0, "", "")

    def is_wrapped(self, url: str) -> bool:
        """Our own links are never wrapped twice."""
        return url.startswith(self._prefix)

    def wrap(self, url: str, context: LinkContext, *, now: datetime | None = None) -> str:
        if self.is_wrapped(url):
            return url
        issued = int(now.timestamp() if now is not None else time.time())
        active = self.keyring.active
        last_context, last_issued, last_key, data = self._last_data
        # The links of one message share their context (the same or an equal one): encode it once
        # per message, not per link.
        if (last_context is not context and last_context != context) or last_issued != issued or last_key != active:
            data = context.encode_issued(issued, active)
            self._last_data = (context, issued, active, data)
        key = self.keyring.key(active)
        assert key is not None
        sig = _mac(key, url, data)
        quoted = "".join(map(_PERCENT_ENCODED.__getitem__, url.encode()))
        return f"{self._prefix}url={quoted}&data={data}&sig={sig}"

    def verify(self, url: str, data: str, sig: str) -> DecodedLink:
        """Check the parameters of a wrapped link as they arrived (the proxy remembers valid ones)."""
        try:
            context = LinkContext.decode(data)
        except (SigningError, ValueError) as exc:
            return DecodedLink(LinkStatus.MALFORMED, url, None, str(exc))
        key = self.keyring.key(context.key_id)
        if key is None:
            return DecodedLink(LinkStatus.UNKNOWN_KEY, url, context, f"key id {context.key_id!r}")
        if not hmac.compare_digest(_mac(key, url, data), sig):
            return DecodedLink(LinkStatus.TAMPERED, url, context, "signature does not match")
        return DecodedLink(LinkStatus.VALID, url, context)

    def decode(self, link: str) -> DecodedLink:
        """Take a whole wrapped link apart (for ``safelinks decode``): its path and query as a browser sends
        them (the URL model), its parameters as the proxy reads them (``parse_link_query``), so what it
        reports is what a click on it would be judged by."""
        try:
            sent = parse(link)
        except URLError as exc:
            return DecodedLink(LinkStatus.NOT_OURS, None, None, f"not a web address: {exc}")
        if sent.path.rstrip("/") != WRAP_PATH:
            return DecodedLink(LinkStatus.NOT_OURS, None, None, f"path is not {WRAP_PATH}")
        try:
            params = parse_link_query(sent.query or "")
        except BadLink as exc:
            return DecodedLink(LinkStatus.MALFORMED, exc.url, None, exc.message)
        return self.verify(params.url, params.data, params.sig)
