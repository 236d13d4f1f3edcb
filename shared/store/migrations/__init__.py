"""Numbered schema migrations, applied in order at start, each exactly once.

Files are named ``NNNN_name.sql`` and written once for both backends; a few tokens stand for the
types that differ: ``{{id}}`` (auto-increment primary key), ``{{real}}`` (a float timestamp or
number), ``{{bool}}``, ``{{false}}``, ``{{true}}``, ``{{blob}}`` and ``{{bigint}}``. A script runs in
one transaction with the row that records it.

A change of data that SQL cannot compute (the host a browser reads in a stored URL) is a program:
``NNNN_name.py`` with ``async def upgrade(db: Database) -> None``, which works through the store's
repositories and commits in batches of its own, so a large table is never held in memory nor in one
transaction. It is recorded once it has returned; interrupted, it runs again whole at the next start,
so it must be safe to repeat.
"""

from __future__ import annotations

import importlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from importlib import resources

from shared.store.database import Database
from shared.store.errors import StoreError

log = logging.getLogger(__name__)

_TOKENS = {
    "sqlite": {
        "id": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "real": "REAL",
        "bool": "INTEGER",
        "false": "0",
        "true": "1",
        "blob": "BLOB",
        "bigint": "INTEGER",
    },
    "postgresql": {
        "id": "BIGSERIAL PRIMARY KEY",
        "real": "DOUBLE PRECISION",
        "bool": "BOOLEAN",
        "false": "FALSE",
        "true": "TRUE",
        "blob": "BYTEA",
        "bigint": "BIGINT",
    },
}
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.(?:sql|py)$")
Program = Callable[[Database], Awaitable[None]]


def available() -> list[tuple[int, str, str]]:
    """(version, file name, text: the SQL template or the program's source) for every migration shipped, in order."""
    found = []
    for entry in resources.files(__package__).iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def render(template: str, dialect: str) -> str:
    tokens = _TOKENS[dialect]
    return re.sub(r"\{\{(\w+)\}\}", lambda m: tokens[m.group(1)], template)


async def pending(db: Database) -> list[tuple[int, str]]:
    """(version, file name) of the shipped migrations the database lacks, in the order they would run."""
    try:
        done = {r["version"] for r in await db.fetchall("SELECT version FROM schema_migrations")}
    except StoreError:  # a new database: everything is pending, and looking creates nothing
        done = set()
    return [(version, name) for version, name, _ in available() if version not in done]


async def _ensure_table(db: Database) -> None:
    await db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        f"applied_at {_TOKENS[db.dialect]['real']} NOT NULL)"
    )


async def migrate(db: Database) -> list[int]:
    """Apply the migrations the database lacks; return the versions applied."""
    await _ensure_table(db)
    applied: list[int] = []
    # Several replicas may start together: one migrates, the others wait and then see it done.
    async with db.migration_lock():
        return await _apply(db, applied)


async def _apply(db: Database, applied: list[int]) -> list[int]:
    done = {r["version"] for r in await db.fetchall("SELECT version FROM schema_migrations")}
    for version, name, template in available():
        if version in done:
            continue
        record = ("INSERT INTO schema_migrations (version, name, applied_at) "
                  f"VALUES ({version}, '{name}', {time.time()})")
        if name.endswith(".py"):
            upgrade: Program = importlib.import_module(f"{__package__}.{name.removesuffix('.py')}").upgrade
            await upgrade(db)
            await db.execute(record)
        else:
            await db.run_script(render(template, db.dialect) + f"\n{record};")
        applied.append(version)
        log.info("applied migration %s", name)
    return applied
