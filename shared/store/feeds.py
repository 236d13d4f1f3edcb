"""The feed registry: which feeds are configured, how each last update went, and who updates it.

Every process reads the registry; one process at a time updates a given feed. That one holds the
feed's lease: a row-level claim with an expiry, taken with a conditional UPDATE that succeeds for
one claimer only, on SQLite and PostgreSQL alike. On PostgreSQL the claim is also guarded by a
transaction-scoped `pg_try_advisory_xact_lock`, so racing claimers skip the row instead of
queueing on its lock. A lease that is not renewed expires, so a crashed updater is replaced.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.durations import DurationError, format_duration, parse_duration
from shared.errors import SafeLinksError
from shared.redaction import redact_text, redact_url
from shared.store import audit, counters
from shared.store.database import Database, Row
from shared.store.errors import DuplicateKey

COUNTER = "feeds"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# CLI spellings of the formats: URLhaus and PhishTank are told apart by the body itself.
FORMAT_NAMES = ("urlhaus", "urlhaus-csv", "urlhaus-text", "openphish", "phishtank", "phishtank-json",
                "phishtank-csv", "plain", "csv")


class FeedRegistryError(SafeLinksError):
    """Base of the feed registry's errors."""


class FeedExists(FeedRegistryError):
    """A feed of that name is already configured."""


class UnknownFeed(FeedRegistryError):
    """No feed of that name is configured."""


class BadFeedSpec(FeedRegistryError):
    """A feed definition that cannot work: a bad name, format, interval or missing column."""


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """What an administrator configures for a feed."""

    name: str
    source: str
    format: str
    column: str | None = None
    every: float = 3600.0
    enabled: bool = True

    def validated(self) -> FeedSpec:
        if not _NAME_RE.match(self.name):
            raise BadFeedSpec(f"feed name {self.name!r}: use letters, digits, '.', '_', '-' (at most 64)")
        if self.format not in FORMAT_NAMES:
            raise BadFeedSpec(f"feed format {self.format!r}: use one of {', '.join(FORMAT_NAMES)}")
        if self.format == "csv" and not self.column:
            raise BadFeedSpec("the csv format needs --column naming the URL or domain column")
        if self.every < 60:
            raise BadFeedSpec(f"refresh interval {self.every:g} s is under a minute")
        if not self.source.strip():
            raise BadFeedSpec("feed source is empty")
        if "://" in self.source and not self.source.startswith(("http://", "https://", "file://")):
            raise BadFeedSpec(f"feed source {self.source!r}: use a path, file://, http:// or https://")
        return self


@dataclass(frozen=True, slots=True)
class FeedRecord:
    """A configured feed and the state of its updates (times are epoch seconds, UTC)."""

    spec: FeedSpec
    created_at: float
    etag: str | None
    last_modified: str | None
    last_attempt_at: float | None
    last_success_at: float | None
    last_changed_at: float | None
    last_error: str | None
    last_error_at: float | None
    entries: int
    bad_lines: int
    rejected: int
    sha256: str | None
    version: int
    lease_owner: str | None
    lease_until: float | None

    @property
    def name(self) -> str:
        return self.spec.name

    def due(self, now: float) -> bool:
        """Whether the feed should be fetched again: never fetched, or its interval passed."""
        if not self.spec.enabled:
            return False
        last = max(self.last_attempt_at or 0.0, self.last_success_at or 0.0)
        return now - last >= self.spec.every

    def age(self, now: float) -> float | None:
        """Seconds since the last successful fetch (or revalidation)."""
        return None if self.last_success_at is None else max(0.0, now - self.last_success_at)

    def lag(self, now: float) -> float:
        """Seconds the feed is overdue: past its last success (or creation) plus its interval."""
        if not self.spec.enabled:
            return 0.0
        since = self.last_success_at if self.last_success_at is not None else self.created_at
        return max(0.0, now - since - self.spec.every)


def _record(row: Row) -> FeedRecord:
    return FeedRecord(
        spec=FeedSpec(row["name"], row["source"], row["format"], row["column_name"],
                      float(row["every_seconds"]), bool(row["enabled"])),
        created_at=float(row["created_at"]),
        etag=row["etag"],
        last_modified=row["last_modified"],
        last_attempt_at=row["last_attempt_at"],
        last_success_at=row["last_success_at"],
        last_changed_at=row["last_changed_at"],
        last_error=row["last_error"],
        last_error_at=row["last_error_at"],
        entries=int(row["entries"]),
        bad_lines=int(row["bad_lines"]),
        rejected=int(row["rejected"]),
        sha256=row["sha256"],
        version=int(row["version"]),
        lease_owner=row["lease_owner"],
        lease_until=row["lease_until"],
    )


def format_every(seconds: float) -> str:
    return format_duration(seconds)


def parse_every(text: str) -> float:
    """A refresh interval in the one duration syntax (``shared.durations``); raises BadFeedSpec."""
    try:
        return parse_duration(text)
    except DurationError as exc:
        raise BadFeedSpec(f"interval: {exc}") from None


class FeedRegistry:
    """The `feeds` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, spec: FeedSpec, *, now: float, actor: audit.Who | None = None) -> FeedRecord:
        spec = spec.validated()
        try:
            async with self._db.transaction() as tx:
                await tx.execute(
                    "INSERT INTO feeds (name, source, format, column_name, every_seconds, enabled, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (spec.name, spec.source, spec.format, spec.column, spec.every, spec.enabled, now),
                )
                await counters.bump(tx, COUNTER)
                if actor is not None:
                    await audit.record(tx, actor, "feed.add", spec.name,
                                       f"{spec.format} {redact_url(spec.source)} every {format_every(spec.every)}",
                                       at=now)
        except DuplicateKey:
            raise FeedExists(f"a feed named {spec.name!r} already exists") from None
        return await self.require(spec.name)

    async def remove(self, name: str, *, actor: audit.Who | None = None) -> None:
        async with self._db.transaction() as tx:
            if not await tx.execute("DELETE FROM feeds WHERE name = ?", (name,)):
                raise UnknownFeed(f"no feed named {name!r}")
            await counters.bump(tx, COUNTER)
            if actor is not None:
                await audit.record(tx, actor, "feed.remove", name, at=time.time())

    async def set_enabled(self, name: str, enabled: bool, *, actor: audit.Who | None = None) -> None:
        """Turn a feed on or off. Turned back on, its next import is a first one (every entry logged)."""
        reset = ", sha256 = NULL, etag = NULL, last_modified = NULL" if enabled else ""
        async with self._db.transaction() as tx:
            if not await tx.execute(f"UPDATE feeds SET enabled = ?{reset} WHERE name = ? AND enabled <> ?",
                                    (enabled, name, enabled)) and await tx.fetchone(
                    "SELECT name FROM feeds WHERE name = ?", (name,)) is None:
                raise UnknownFeed(f"no feed named {name!r}")
            await counters.bump(tx, COUNTER)
            if actor is not None:
                await audit.record(tx, actor, "feed.enable" if enabled else "feed.disable", name, at=time.time())

    async def get(self, name: str) -> FeedRecord | None:
        row = await self._db.fetchone("SELECT * FROM feeds WHERE name = ?", (name,))
        return _record(row) if row else None

    async def require(self, name: str) -> FeedRecord:
        found = await self.get(name)
        if found is None:
            raise UnknownFeed(f"no feed named {name!r}")
        return found

    async def list(self) -> list[FeedRecord]:
        return [_record(r) for r in await self._db.fetchall("SELECT * FROM feeds ORDER BY name")]

    async def version(self) -> int:
        """Moves whenever any feed is added, removed, toggled or changes content."""
        return await counters.read(self._db, COUNTER)

    async def claim(self, name: str, owner: str, *, now: float, lease: float) -> bool:
        """Take (or renew) the right to update `name` for `lease` seconds; False if another holds it."""
        async with self._db.transaction() as tx:
            if self._db.dialect == "postgresql":
                # Keyed per schema, like every advisory lock of the store (see shared.store.postgres_sql).
                row = await tx.fetchone(
                    "SELECT pg_try_advisory_xact_lock(hashtextextended(coalesce(current_schema(), '') || ':' || ?, 0))"
                    " AS got", (f"safelinks-feed:{name}",))
                if not row or not row["got"]:
                    return False
            changed = await tx.execute(
                "UPDATE feeds SET lease_owner = ?, lease_until = ? WHERE name = ? AND "
                "(lease_owner IS NULL OR lease_owner = ? OR lease_until IS NULL OR lease_until < ?)",
                (owner, now + lease, name, owner, now),
            )
        return bool(changed)

    async def release(self, name: str, owner: str) -> None:
        await self._db.execute(
            "UPDATE feeds SET lease_owner = NULL, lease_until = NULL WHERE name = ? AND lease_owner = ?",
            (name, owner),
        )

    async def record_attempt(self, name: str, *, now: float) -> None:
        await self._db.execute("UPDATE feeds SET last_attempt_at = ? WHERE name = ?", (now, name))

    async def record_success(
        self,
        name: str,
        *,
        now: float,
        etag: str | None,
        last_modified: str | None,
        entries: int,
        bad_lines: int,
        rejected: int,
        sha256: str,
        accepted_by: audit.Who | None = None,
        accepted: str = "",
    ) -> None:
        """A new body was fetched, parsed and indexed; other processes reload on the version bump.
        ``accepted_by``: the person who forced it in (``update --force``, "Accept the held update")."""
        async with self._db.transaction() as tx:
            await tx.execute(
                "UPDATE feeds SET etag = ?, last_modified = ?, last_attempt_at = ?, last_success_at = ?, "
                "last_changed_at = ?, last_error = NULL, last_error_at = NULL, entries = ?, bad_lines = ?, "
                "rejected = ?, sha256 = ?, version = version + 1 WHERE name = ?",
                (etag, last_modified, now, now, now, entries, bad_lines, rejected, sha256, name),
            )
            await counters.bump(tx, COUNTER)
            if accepted_by is not None:
                await audit.record(tx, accepted_by, "feed.update.force", name, accepted, at=now)

    async def record_not_modified(self, name: str, *, now: float, etag: str | None,
                                  last_modified: str | None) -> None:
        """The source answered 304 (or the file is unchanged): the copy held is current."""
        await self._db.execute(
            "UPDATE feeds SET last_attempt_at = ?, last_success_at = ?, last_error = NULL, last_error_at = NULL, "
            "etag = COALESCE(?, etag), last_modified = COALESCE(?, last_modified) WHERE name = ?",
            (now, now, etag, last_modified, name),
        )

    async def record_failure(self, name: str, error: str, *, now: float) -> None:
        await self._db.execute(
            "UPDATE feeds SET last_attempt_at = ?, last_error = ?, last_error_at = ? WHERE name = ?",
            (now, redact_text(error)[:1000], now, name),
        )


def epoch(moment: datetime) -> float:
    return moment.astimezone(UTC).timestamp()
