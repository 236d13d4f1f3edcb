"""A Safe Browsing v4 server on loopback: list updates (full and partial), full hashes, and lookups.

It lists expressions per threat type, hands out 4-byte prefixes with client states it remembers,
so a partial update carries real removal indices and additions, and a checksum over the result.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer

from shared.urls import expressions

KEY = "test-api-key"


def digest(expression: str) -> bytes:
    return hashlib.sha256(expression.encode()).digest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class SafeBrowsingStandin:
    listed: dict[str, set[str]] = field(default_factory=dict)  # threat type -> expressions
    decoys: dict[str, set[bytes]] = field(default_factory=dict)  # prefixes listed with no full hash
    minimum_wait: str = "0s"
    corrupt_checksum: bool = False
    url: str = ""
    calls: dict[str, int] = field(default_factory=lambda: {"update": 0, "full": 0, "lookup": 0})
    requests: list[dict[str, object]] = field(default_factory=list)
    _states: dict[str, list[bytes]] = field(default_factory=dict)

    def prefixes(self, threat: str) -> list[bytes]:
        found = {digest(e)[:4] for e in self.listed.get(threat, set())} | self.decoys.get(threat, set())
        return sorted(found)

    def _authorised(self, request: web.Request) -> None:
        if request.query.get("key") != KEY:
            raise web.HTTPForbidden(text="API key not valid")

    async def updates(self, request: web.Request) -> web.Response:
        self._authorised(request)
        self.calls["update"] += 1
        body = await request.json()
        self.requests.append(body)
        responses = []
        for req in body["listUpdateRequests"]:
            threat = req["threatType"]
            now = self.prefixes(threat)
            before = self._states.get(req.get("state") or "")
            item: dict[str, object] = {"threatType": threat, "platformType": "ANY_PLATFORM",
                                       "threatEntryType": "URL"}
            if before is None:
                item["responseType"] = "FULL_UPDATE"
                added, removed = now, []
            else:
                item["responseType"] = "PARTIAL_UPDATE"
                added = [p for p in now if p not in set(before)]
                removed = [i for i, p in enumerate(before) if p not in set(now)]
            if added:
                item["additions"] = [{"compressionType": "RAW",
                                      "rawHashes": {"prefixSize": 4, "rawHashes": b64(b"".join(added))}}]
            if removed:
                item["removals"] = [{"compressionType": "RAW", "rawIndices": {"indices": removed}}]
            state = f"{threat}-{len(self._states)}"
            self._states[state] = now
            item["newClientState"] = state
            checksum = hashlib.sha256(b"".join(now) + (b"x" if self.corrupt_checksum else b"")).digest()
            item["checksum"] = {"sha256": b64(checksum)}
            responses.append(item)
        return web.json_response({"listUpdateResponses": responses, "minimumWaitDuration": self.minimum_wait})

    async def full_hashes(self, request: web.Request) -> web.Response:
        self._authorised(request)
        self.calls["full"] += 1
        body = await request.json()
        wanted = [base64.b64decode(e["hash"]) for e in body["threatInfo"]["threatEntries"]]
        matches = []
        for threat, exprs in self.listed.items():
            for expr in exprs:
                full = digest(expr)
                if any(full.startswith(p) for p in wanted):
                    matches.append({"threatType": threat, "platformType": "ANY_PLATFORM", "threatEntryType": "URL",
                                    "threat": {"hash": b64(full)}, "cacheDuration": "300s"})
        return web.json_response({"matches": matches, "minimumWaitDuration": "0s", "negativeCacheDuration": "300s"})

    async def lookup(self, request: web.Request) -> web.Response:
        self._authorised(request)
        self.calls["lookup"] += 1
        body = await request.json()
        matches = []
        for entry in body["threatInfo"]["threatEntries"]:
            exprs = set(expressions(entry["url"]))
            for threat, listed in self.listed.items():
                if exprs & listed:
                    matches.append({"threatType": threat, "platformType": "ANY_PLATFORM", "threatEntryType": "URL",
                                    "threat": {"url": entry["url"]}, "cacheDuration": "300s"})
        return web.json_response({"matches": matches} if matches else {})


@asynccontextmanager
async def safebrowsing_standin(**kw: object) -> AsyncIterator[SafeBrowsingStandin]:
    state = SafeBrowsingStandin(**kw)  # type: ignore[arg-type]
    app = web.Application()
    app.router.add_post("/v4/threatListUpdates:fetch", state.updates)
    app.router.add_post("/v4/fullHashes:find", state.full_hashes)
    app.router.add_post("/v4/threatMatches:find", state.lookup)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state.url = str(server.make_url("")).rstrip("/")
    try:
        yield state
    finally:
        await server.close()
