"""The look-back: which stored clicks a verdict on an expression covers, within a time window.

An expression names a host (and perhaps a path): a verdict on ``evil.example/`` covers every URL on
that host and its subdomains. The clicks table keeps each click's host reversed (``elpmaxe.live``)
and indexes it with the timestamp, so the host and its subdomains are one or two range scans; the
exact Safe Browsing coverage (path prefixes, the five-label limit) is then checked per distinct URL
with the same ``expressions`` the click path uses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from shared.clicks import Click, reversed_host
from shared.store.clicks import click_from_row
from shared.store.database import Database
from shared.urls import InvalidURL, covers

# "." sorts just before "/": every subdomain of a reversed host lies in [host + ".", host + "/").
_SUBDOMAIN_END = "/"


def expression_host(expression: str) -> str:
    host = expression.split("/", 1)[0]
    return host.split("?", 1)[0]


async def covered_clicks(db: Database, expression: str, start: float, end: float) -> AsyncIterator[Click]:
    """Clicks in ``[start, end]`` whose URL the expression covers, oldest first."""
    rhost = reversed_host(expression_host(expression))
    decided: dict[str, bool] = {}
    sql = (
        "SELECT * FROM clicks WHERE ((url_rhost = ?) OR (url_rhost >= ? AND url_rhost < ?)) "
        "AND timestamp >= ? AND timestamp <= ? ORDER BY timestamp, id"
    )
    async for row in db.iterate(sql, (rhost, rhost + ".", rhost + _SUBDOMAIN_END, start, end)):
        url = row["url"]
        hit = decided.get(url)
        if hit is None:
            try:
                hit = covers(expression, url)
            except InvalidURL:
                hit = False
            decided[url] = hit
        if hit:
            yield click_from_row(row)
