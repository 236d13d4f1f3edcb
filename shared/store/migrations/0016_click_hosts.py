"""The click log's host index becomes the host a browser opens, in the form lookup expressions use.

Rows stored before were indexed by urllib's reading of the text (an IPv6 address without its brackets,
``%61.contoso.com`` as written), where the look-back searches by an expression's host: the index of
every stored click is recomputed, a batch at a time. Run again after an interruption, it only finishes.
"""

from __future__ import annotations

from shared.store.clicks import ClickStore
from shared.store.database import Database


async def upgrade(db: Database) -> None:
    """Recompute ``clicks.url_rhost`` for every stored click."""
    await ClickStore(db).reindex_hosts()
