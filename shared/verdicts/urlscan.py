"""A ``Scanner`` (``shared.verdicts.scanner``) for urlscan.io-style services.

`UrlscanClient` speaks the urlscan.io API (submit with `POST /api/v1/scan/`, then poll
`GET /api/v1/result/{uuid}/`, which answers 404 until the scan is done), which self-hosted
scanners imitate too. The scanner's own address is configuration and trusted; the URLs it is
asked to visit are not, and are checked before submission (see `shared.verdicts.scans`).
"""

from __future__ import annotations

from typing import Any

import aiohttp

from shared.verdicts.scanner import ScanFailed, ScanRefused, ScanReport

USER_AGENT = "teams-safelinks scanner client"


class UrlscanClient:
    """A urlscan.io-style API client."""

    def __init__(self, base_url: str, api_key: str = "", *, visibility: str = "private",
                 timeout: float = 15.0) -> None:
        self._base = base_url.rstrip("/")
        self._key = api_key
        self._visibility = visibility
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json"}
            if self._key:
                headers["API-Key"] = self._key
            self._session = aiohttp.ClientSession(headers=headers, timeout=self._timeout)
        return self._session

    async def submit(self, url: str) -> str:
        body = {"url": url, "visibility": self._visibility}
        data = await self._call("POST", f"{self._base}/api/v1/scan/", body)
        scan_id = data.get("uuid") if isinstance(data, dict) else None
        if not isinstance(scan_id, str) or not scan_id:
            raise ScanFailed("scanner accepted the URL but gave no scan id")
        return scan_id

    async def result(self, scan_id: str) -> ScanReport | None:
        data = await self._call("GET", f"{self._base}/api/v1/result/{scan_id}/", None)
        if data is None:
            return None
        overall = (data.get("verdicts") or {}).get("overall") or {}
        if not isinstance(overall, dict):
            raise ScanFailed("scan result has no verdicts.overall")
        task = data.get("task") or {}
        return ScanReport(
            malicious=bool(overall.get("malicious", False)),
            score=float(overall.get("score") or 0),
            categories=tuple(str(c) for c in overall.get("categories") or ()),
            brands=tuple(str(b.get("name", b)) if isinstance(b, dict) else str(b)
                         for b in overall.get("brands") or ()),
            result_url=task.get("reportURL") if isinstance(task, dict) else None,
        )

    async def _call(self, method: str, url: str, body: dict[str, Any] | None) -> dict[str, Any] | None:
        try:
            async with self._http().request(method, url, json=body) as resp:
                if method == "GET" and resp.status == 404:
                    return None  # urlscan's "not finished yet"
                if resp.status == 400 and method == "POST":
                    raise ScanRefused(f"scanner refused the URL: {(await resp.text())[:200]}")
                if resp.status == 429:
                    raise ScanFailed(f"scanner rate limit (retry after {resp.headers.get('Retry-After', '?')} s)")
                if not 200 <= resp.status < 300:
                    raise ScanFailed(f"scanner answered HTTP {resp.status}")
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ScanFailed(f"scanner unreachable or unreadable: {type(exc).__name__}: {exc}") from exc
        if not isinstance(data, dict):
            raise ScanFailed("scanner answered something other than a JSON object")
        return data

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
