"""Which kept Teams messages a batch of verdict changes covers, each within its own look-back window.

The coverage rule is the click look-back's (``shared.alerts.lookback``): an expression covers a URL
when it is one of the URL's Safe Browsing lookup expressions. A feed update can change a hundred
thousand expressions at once, so changes are taken in batches and the messages of the batch's
window are read once: each distinct URL's expressions are computed once and looked up in the
batch's expressions, rather than reading the window again for every change.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence

from shared.events import VerdictChanged
from shared.evidence import TeamsMessageEvidence
from shared.store.database import Database
from shared.store.messages import EvidenceStore, evidence_from_row
from shared.urls import InvalidURL, expression_of, expressions


def _keyed(changes: Sequence[VerdictChanged]) -> dict[str, VerdictChanged]:
    found: dict[str, VerdictChanged] = {}
    for change in changes:  # in log order: the latest change of an expression wins
        try:
            found[expression_of(change.expression)] = change
        except (InvalidURL, ValueError):
            continue
    return found


async def covered_messages(db: Database, changes: Sequence[VerdictChanged], lookback: float
                           ) -> AsyncIterator[tuple[TeamsMessageEvidence, list[tuple[str, VerdictChanged]]]]:
    """(message, [(URL, the change covering it)]) for messages delivered within ``lookback`` seconds before
    a change that covers one of their URLs; deleted messages and personal chats with the bot are left out."""
    keyed = _keyed(changes)
    if not keyed:
        return
    start = min(c.changed_at.timestamp() for c in keyed.values()) - lookback
    end = max(c.changed_at.timestamp() for c in keyed.values())
    seen: dict[str, list[str]] = {}
    async for row in EvidenceStore(db).readable_by_others(start, end):
        try:
            urls = json.loads(row["urls"] or "[]")
        except ValueError:
            continue
        received = float(row["received_at"])
        hits = []
        for url in urls if isinstance(urls, list) else ():
            if not isinstance(url, str):
                continue
            exprs = seen.get(url)
            if exprs is None:
                try:
                    exprs = [e for e in expressions(url) if e in keyed]
                except (InvalidURL, ValueError):
                    exprs = []
                seen[url] = exprs
            for expr in exprs:
                change = keyed[expr]
                if change.changed_at.timestamp() - lookback <= received <= change.changed_at.timestamp():
                    hits.append((url, change))
                    break
        if hits:
            yield evidence_from_row(row), hits
