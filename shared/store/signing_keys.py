"""The ``signing_keys`` and ``signing_probes`` tables: the link-signing keys every replica shares, and the
link each running replica signed so the others can check it (``shared.signing_keys``)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.store.database import Database

__all__ = ["SigningKeyTable", "SigningProbe", "SigningProbeTable", "StoredKey"]


@dataclass(frozen=True, slots=True)
class StoredKey:
    """One row of ``signing_keys``: the secret as stored (base64 text)."""

    kid: str
    secret: str
    active: bool


@dataclass(frozen=True, slots=True)
class SigningProbe:
    """One row of ``signing_probes``: the link ``replica`` signed with key ``kid`` at ``made_at``."""

    replica: str
    kid: str
    link: str
    made_at: float


class SigningKeyTable:
    """Rows of ``signing_keys``: added once, never changed; at most one is active."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, kid: str, secret: str, *, active: bool, origin: str, created_at: float) -> bool:
        """Store a key unless its id, or (when ``active``) the active place, is taken; whether it was stored."""
        # ON CONFLICT without a target covers both the id and "one active key": the first replica wins.
        changed = await self._db.execute(
            "INSERT INTO signing_keys (kid, secret, active, origin, created_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (kid, secret, active, origin, created_at),
        )
        return changed > 0

    async def all(self) -> list[StoredKey]:
        """Every key, oldest first."""
        rows = await self._db.fetchall("SELECT kid, secret, active FROM signing_keys ORDER BY created_at")
        return [StoredKey(row["kid"], row["secret"], bool(row["active"])) for row in rows]


class SigningProbeTable:
    """Rows of ``signing_probes``: one per replica, renewed while it runs."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def made_since(self, since: float, *, other_than: str) -> list[SigningProbe]:
        """The probes made after ``since`` by replicas other than ``other_than``."""
        rows = await self._db.fetchall(
            "SELECT replica, kid, link, made_at FROM signing_probes WHERE made_at > ? AND replica <> ?",
            (since, other_than),
        )
        return [SigningProbe(row["replica"], row["kid"], row["link"], row["made_at"]) for row in rows]

    async def put(self, replica: str, kid: str, link: str, made_at: float) -> None:
        """Store (or replace) the probe of ``replica``."""
        await self._db.execute(
            "INSERT INTO signing_probes (replica, kid, link, made_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (replica) DO UPDATE SET kid = excluded.kid, link = excluded.link, made_at = excluded.made_at",
            (replica, kid, link, made_at),
        )

    async def drop_older_than(self, before: float) -> None:
        """Delete the probes made before ``before``."""
        await self._db.execute("DELETE FROM signing_probes WHERE made_at < ?", (before,))

    async def drop(self, replica: str) -> None:
        """Delete the probe of ``replica``."""
        await self._db.execute("DELETE FROM signing_probes WHERE replica = ?", (replica,))
