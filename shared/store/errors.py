"""The store's exception tree.

StoreError
├── StoreUnavailable   the database cannot be reached or written (the caller fails closed or retries)
└── DuplicateKey       a unique key already exists (idempotent writes use this to detect replays)
"""

from shared.errors import SafeLinksError


class StoreError(SafeLinksError):
    """Base of every store failure."""


class StoreUnavailable(StoreError):
    """The database is unreachable, locked for too long, or out of space."""


class DuplicateKey(StoreError):
    """A row with the same unique key exists."""
