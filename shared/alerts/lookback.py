"""The look-back: which stored clicks a verdict on an expression covers, within a time window.

An expression names a host (and perhaps a path): a verdict on ``evil.example/`` covers every URL on
that host and its subdomains. The click log finds the clicks on the host and its subdomains by its
reversed-host index; the exact Safe Browsing coverage (path prefixes, the five-label limit) is then
checked per distinct URL with the same ``expressions`` the click path uses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from shared.clicks import Click
from shared.store.clicks import ClickStore
from shared.urls import InvalidURL, covers


def expression_host(expression: str) -> str:
    host = expression.split("/", 1)[0]
    return host.split("?", 1)[0]


async def covered_clicks(clicks: ClickStore, expression: str, start: float, end: float) -> AsyncIterator[Click]:
    """Clicks in ``[start, end]`` whose URL the expression covers, oldest first."""
    decided: dict[str, bool] = {}

    def covered(url: str) -> bool:
        hit = decided.get(url)
        if hit is None:
            try:
                hit = covers(expression, url)
            except InvalidURL:
                hit = False
            decided[url] = hit
        return hit

    async for click in clicks.on_host(expression_host(expression), start, end, covered):
        yield click
