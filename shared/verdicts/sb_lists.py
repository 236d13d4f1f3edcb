"""Google Safe Browsing v4: the local hash-prefix lists, the wire format, and the API client.

A list is the lexicographically sorted set of SHA-256 prefixes (4 to 32 bytes) the Update API
hands out. A partial update removes entries by their index in the sorted list, then merges the
additions; the result must hash (SHA-256 over the concatenated sorted prefixes) to the checksum
the server sent, or the list is dropped and fetched whole next time. Lookups test the first four
bytes of a full hash against a sorted numpy array, then confirm with a bisect on the list.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np

from shared.errors import SafeLinksError

PLATFORM = "ANY_PLATFORM"
ENTRY_TYPE = "URL"
THREAT_NAMES = {
    "MALWARE": "malware",
    "SOCIAL_ENGINEERING": "phishing",
    "UNWANTED_SOFTWARE": "unwanted software",
    "POTENTIALLY_HARMFUL_APPLICATION": "potentially harmful application",
}


class SafeBrowsingError(SafeLinksError):
    """Base of the Safe Browsing errors."""


class SafeBrowsingUnavailable(SafeBrowsingError):
    """The API could not be reached or answered an error."""


class ChecksumMismatch(SafeBrowsingError):
    """A list update did not produce the list the server described: it is reset."""


def duration(text: object, default: float = 0.0) -> float:
    """Protobuf JSON durations: `"593.440s"` → 593.44."""
    if not isinstance(text, str) or not text.endswith("s"):
        return default
    try:
        return float(text[:-1])
    except ValueError:
        return default


def full_hash(expression: str) -> bytes:
    return hashlib.sha256(expression.encode()).digest()


def _b64(data: str) -> bytes:
    return base64.b64decode(data)


def split_raw(raw: bytes, size: int) -> list[bytes]:
    if size < 4 or size > 32 or len(raw) % size:
        raise SafeBrowsingError(f"raw hashes of {len(raw)} bytes cannot be {size}-byte prefixes")
    return [raw[i : i + size] for i in range(0, len(raw), size)]


@dataclass
class PrefixList:
    """One threat list's prefixes and the client state the server gave with them."""

    threat_type: str
    prefixes: list[bytes] = field(default_factory=list)
    state: str = ""
    _first4: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint32))

    def apply(self, update: dict[str, Any]) -> None:
        """Apply one `listUpdateResponses` item; raises ChecksumMismatch (and resets) on a bad result."""
        current = [] if update.get("responseType") == "FULL_UPDATE" else self.prefixes
        removed: set[int] = set()
        for removal in update.get("removals") or ():
            removed.update(int(i) for i in (removal.get("rawIndices") or {}).get("indices") or ())
        if removed and max(removed) >= len(current):
            self.reset()
            raise ChecksumMismatch(f"{self.threat_type}: removal index past the end of the list")
        kept = [p for i, p in enumerate(current) if i not in removed] if removed else list(current)
        for addition in update.get("additions") or ():
            raw = addition.get("rawHashes") or {}
            kept.extend(split_raw(_b64(raw.get("rawHashes", "")), int(raw.get("prefixSize", 4))))
        merged = sorted(set(kept))
        expected = (update.get("checksum") or {}).get("sha256")
        if expected is not None and hashlib.sha256(b"".join(merged)).digest() != _b64(expected):
            self.reset()
            raise ChecksumMismatch(f"{self.threat_type}: checksum mismatch after update; fetching it whole")
        self.prefixes = merged
        self.state = str(update.get("newClientState", ""))
        self._first4 = np.unique(np.frombuffer(b"".join(p[:4] for p in merged), dtype=">u4").astype(np.uint32))

    def reset(self) -> None:
        self.prefixes, self.state = [], ""
        self._first4 = np.empty(0, np.uint32)

    def matching_prefix(self, digest: bytes) -> bytes | None:
        """The listed prefix of `digest`, if any."""
        head = np.uint32(int.from_bytes(digest[:4], "big"))
        pos = int(self._first4.searchsorted(head))
        if pos >= len(self._first4) or self._first4[pos] != head:
            return None
        i = bisect.bisect_left(self.prefixes, digest[:4])
        while i < len(self.prefixes) and self.prefixes[i][:4] == digest[:4]:
            if digest.startswith(self.prefixes[i]):
                return self.prefixes[i]
            i += 1
        return None

    def __len__(self) -> int:
        return len(self.prefixes)


class SafeBrowsingClient:
    """The three v4 calls used here: list updates, full hashes, and the Lookup API."""

    def __init__(self, base_url: str, api_key: str, client_id: str, client_version: str = "1.0",
                 *, timeout: float = 10.0) -> None:
        self._base = base_url.rstrip("/")
        self._key = api_key
        self._client = {"clientId": client_id, "clientVersion": client_version}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def _post(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(f"{self._base}/v4/{method}", params={"key": self._key},
                                          json={"client": self._client, **body}) as resp:
                if resp.status != 200:
                    raise SafeBrowsingUnavailable(f"{method}: HTTP {resp.status}")
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise SafeBrowsingUnavailable(f"{method}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(data, dict):
            raise SafeBrowsingUnavailable(f"{method}: answer is not a JSON object")
        return data

    async def fetch_updates(self, lists: Iterable[PrefixList]) -> dict[str, Any]:
        return await self._post("threatListUpdates:fetch", {"listUpdateRequests": [
            {"threatType": lst.threat_type, "platformType": PLATFORM, "threatEntryType": ENTRY_TYPE,
             "state": lst.state, "constraints": {"supportedCompressions": ["RAW"]}}
            for lst in lists
        ]})

    async def find_full_hashes(self, lists: Iterable[PrefixList], prefixes: Iterable[bytes]) -> dict[str, Any]:
        lists = list(lists)
        return await self._post("fullHashes:find", {
            "clientStates": [lst.state for lst in lists],
            "threatInfo": {
                "threatTypes": [lst.threat_type for lst in lists], "platformTypes": [PLATFORM],
                "threatEntryTypes": [ENTRY_TYPE],
                "threatEntries": [{"hash": base64.b64encode(p).decode()} for p in prefixes],
            },
        })

    async def lookup(self, threat_types: list[str], urls: list[str]) -> dict[str, Any]:
        return await self._post("threatMatches:find", {"threatInfo": {
            "threatTypes": threat_types, "platformTypes": [PLATFORM], "threatEntryTypes": [ENTRY_TYPE],
            "threatEntries": [{"url": u} for u in urls],
        }})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
