"""Statement text for PostgreSQL: ``?`` placeholders numbered, and what a statement needs before it runs.

Tables read by id cursors (the alert engine reads ``clicks`` and ``verdict_changes`` as "every row
after the last id done") must become visible in id order. With one SQLite writer they do. On
PostgreSQL, ids come from a sequence when a row is inserted but rows become visible when their
transaction commits, and with several writers those orders differ: a reader could pass id 101
while id 100 is still uncommitted, and never look back. So an insert into such a table first takes
a transaction-level advisory lock for it: appends to that table commit one transaction at a time,
in id order. Group commit keeps this cheap (one lock per batch of clicks, not per click).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Tables appended to by several writers and read in id order by cursors.
APPEND_ORDERED_TABLES = ("clicks", "verdict_changes")
_ORDERED_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(" + "|".join(APPEND_ORDERED_TABLES) + r")\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Statement:
    """A statement ready for asyncpg: numbered placeholders, and the append lock it needs (if any)."""

    text: str
    ordered_table: str | None


class Statements:
    """Translations cached per statement text (bounded: IN lists of varying length make new texts)."""

    def __init__(self, limit: int = 4096) -> None:
        self._cache: dict[str, Statement] = {}
        self._limit = limit

    def __call__(self, sql: str) -> Statement:
        hit = self._cache.get(sql)
        if hit is None:
            ordered = _ORDERED_INSERT.match(sql)
            hit = Statement(number_placeholders(sql), ordered.group(1).lower() if ordered else None)
            if len(self._cache) >= self._limit:
                self._cache.clear()
            self._cache[sql] = hit
        return hit


def number_placeholders(sql: str) -> str:
    """``?`` → ``$n`` in order, outside string literals, quoted identifiers and ``--`` comments."""
    out: list[str] = []
    n = 0
    i, end = 0, len(sql)
    while i < end:
        ch = sql[i]
        if ch in ("'", '"'):
            close = sql.find(ch, i + 1)
            while close != -1 and close + 1 < end and sql[close + 1] == ch:  # doubled quote inside
                close = sql.find(ch, close + 2)
            stop = end if close == -1 else close + 1
            out.append(sql[i:stop])
            i = stop
        elif ch == "-" and sql.startswith("--", i):
            stop = sql.find("\n", i)
            stop = end if stop == -1 else stop
            out.append(sql[i:stop])
            i = stop
        elif ch == "?":
            n += 1
            out.append(f"${n}")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def affected(status: str) -> int:
    """Rows changed, from asyncpg's command tag ("UPDATE 3", "INSERT 0 1", "CREATE TABLE")."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def is_select(sql: str) -> bool:
    return sql.lstrip()[:7].upper() == "SELECT "


def is_if_not_exists(sql: str) -> bool:
    head = sql.lstrip()[:80].upper()
    return head.startswith("CREATE") and "IF NOT EXISTS" in head


# Every advisory lock and notification channel of ours is scoped to the current schema (the first of the
# URL's search_path that exists): deployments, and tests, that share a database in schemas of their own
# never wait on each other's locks nor hear each other's signals. A lock key computed from NULL would
# be NULL, which takes no lock at all, hence coalesce.
_SCHEMA = "coalesce(current_schema(), '')"

# The 64-bit key of a session-level advisory lock named $1.
LOCK_KEY_SQL = f"SELECT hashtextextended({_SCHEMA} || ':' || $1::text, 0)"

# Held until the transaction ends.
APPEND_LOCK_SQL = f"SELECT pg_advisory_xact_lock(hashtextextended({_SCHEMA} || ':append:' || $1::text, 0))"

# The channel named $1 in this schema: "name:schema", or "name:<hash of the schema>" where that would pass
# the 63 bytes of an identifier (LISTEN would cut it short, pg_notify would refuse it).
_CHANNEL = (f"CASE WHEN octet_length($1::text || ':' || {_SCHEMA}) < 64 THEN $1::text || ':' || {_SCHEMA} "
            f"ELSE $1::text || ':' || to_hex(hashtextextended({_SCHEMA}, 0)) END")
CHANNEL_SQL = f"SELECT {_CHANNEL}"
NOTIFY_SQL = f"SELECT pg_notify({_CHANNEL}, $2::text)"
