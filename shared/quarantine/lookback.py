"""Which kept Teams messages a verdict on an expression covers, delivered within a time window.

The same coverage rule as the click look-back (``shared.alerts.lookback``): an expression covers a
URL when it is one of the URL's Safe Browsing lookup expressions. Messages keep their links as a
JSON list, so each message in the window is read once and each distinct URL decided once.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from shared.evidence import TeamsMessageEvidence
from shared.store.database import Database
from shared.store.evidence import evidence_from_row
from shared.urls import InvalidURL, covers


async def covered_messages(db: Database, expression: str, start: float, end: float
                           ) -> AsyncIterator[tuple[TeamsMessageEvidence, list[str]]]:
    """(message, the URLs of it the expression covers) for messages received in ``[start, end]``, not deleted."""
    decided: dict[str, bool] = {}
    sql = ("SELECT * FROM teams_messages WHERE received_at >= ? AND received_at <= ? AND deleted_at IS NULL "
           "AND thread_sub_type <> 'personal' ORDER BY received_at")
    async for row in db.iterate(sql, (start, end)):
        try:
            urls = json.loads(row["urls"] or "[]")
        except ValueError:
            continue
        hits = []
        for url in urls:
            if not isinstance(url, str):
                continue
            hit = decided.get(url)
            if hit is None:
                try:
                    hit = covers(expression, url)
                except (InvalidURL, ValueError):
                    hit = False
                decided[url] = hit
            if hit:
                hits.append(url)
        if hits:
            yield evidence_from_row(row), hits
