"""The proxy under test: a real server on loopback, with a handle on its services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from shared.clicks import Click, Workload
from shared.services import SERVICES, Services
from shared.signing import LinkContext
from shared.store.clicks import ClickFilter
from tests.conftest import BROWSER_UA


@dataclass
class Proxy:
    client: TestClient

    @property
    def services(self) -> Services:
        return self.client.server.app[SERVICES]  # type: ignore[union-attr]

    def link(self, url: str, **ctx: Any) -> str:
        """A wrapped link, as a path the test client can request."""
        values: dict[str, Any] = {"workload": Workload.TEAMS, "recipient": "alice@contoso.com",
                                  "recipient_id": "aad-alice", "tenant": "tenant-1",
                                  "conversation": "19:chat@thread.v2", "message": "1700000000001",
                                  "sender": "mallory@evil.example"}
        values.update(ctx)
        full = self.services.signer.wrap(url, LinkContext(**values))
        return full.removeprefix(self.services.settings.public_url)

    async def click(self, path: str, *, ua: str = BROWSER_UA, method: str = "GET", **kw: Any) -> Any:
        headers = {"User-Agent": ua, **kw.pop("headers", {})}
        if method == "POST":  # what a browser submitting our own warning page's form sends
            headers.setdefault("Sec-Fetch-Site", "same-origin")
        return await self.client.request(method, path, allow_redirects=False, headers=headers, **kw)

    async def stored(self) -> list[Click]:
        return list(reversed(await self.services.clicks.list(ClickFilter())))
