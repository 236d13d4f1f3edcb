"""The store: one async database interface over SQLite (embedded) and PostgreSQL, and its repositories.

SQL is written once with ``?`` placeholders; each backend adapts it. Schema changes are numbered
migrations in ``migrations/`` applied at start.
"""

from shared.store.database import Database, Row, open_database
from shared.store.errors import DuplicateKey, StoreError, StoreUnavailable

__all__ = ["Database", "DuplicateKey", "Row", "StoreError", "StoreUnavailable", "open_database"]
