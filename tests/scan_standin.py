"""A urlscan-style scanner on loopback: submissions answered with an id, results after a few polls."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class ScanStandin:
    """Finds a URL malicious when it contains `evil`; `polls` 404s come before each result."""

    polls: int = 1
    status: int = 200
    url: str = ""
    submitted: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    _scans: dict[str, list[object]] = field(default_factory=dict)

    async def submit(self, request: web.Request) -> web.Response:
        if self.status != 200:
            return web.json_response({"message": "down"}, status=self.status)
        body = await request.json()
        self.keys.append(request.headers.get("API-Key", ""))
        self.submitted.append(body["url"])
        scan_id = str(uuid.uuid4())
        self._scans[scan_id] = [body["url"], 0]
        return web.json_response({"uuid": scan_id, "result": f"{self.url}/result/{scan_id}/",
                                  "api": f"{self.url}/api/v1/result/{scan_id}/", "visibility": body["visibility"]})

    async def result(self, request: web.Request) -> web.Response:
        scan = self._scans.get(request.match_info["id"])
        if scan is None:
            return web.json_response({"message": "not found"}, status=404)
        url, seen = str(scan[0]), int(scan[1])  # type: ignore[call-overload]
        scan[1] = seen + 1
        if seen < self.polls:
            return web.json_response({"message": "Scan is not finished yet"}, status=404)
        evil = "evil" in url
        return web.json_response({
            "task": {"url": url, "reportURL": f"{self.url}/result/{request.match_info['id']}/"},
            "verdicts": {"overall": {"score": 100 if evil else 0, "malicious": evil,
                                     "categories": ["phishing"] if evil else [],
                                     "brands": [{"name": "Microsoft"}] if evil else []}},
        })


@asynccontextmanager
async def scan_standin(**kw: object) -> AsyncIterator[ScanStandin]:
    state = ScanStandin(**kw)  # type: ignore[arg-type]
    app = web.Application()
    app.router.add_post("/api/v1/scan/", state.submit)
    app.router.add_get("/api/v1/result/{id}/", state.result)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state.url = str(server.make_url("")).rstrip("/")
    try:
        yield state
    finally:
        await server.close()
