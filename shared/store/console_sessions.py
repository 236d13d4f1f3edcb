"""The console's sign-in tables: one-time links (``console_links``), sessions (``console_sessions``) and
OpenID Connect sign-ins under way (``console_oidc_states``).

Tokens are stored as their digests; which digest and what a role means is the console's business.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.store.database import Database, Row

__all__ = ["ConsoleLinkTable", "ConsoleSessionTable", "OidcState", "OidcStateTable", "StoredSession"]


class ConsoleLinkTable:
    """Rows of ``console_links``: a one-time sign-in link, spent by the first sign-in that uses it."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, token_hash: str, role: str, *, created_at: float, expires_at: float) -> None:
        """Store a new, unused link."""
        await self._db.execute(
            "INSERT INTO console_links (token_hash, role, created_at, expires_at) VALUES (?, ?, ?, ?)",
            (token_hash, role, created_at, expires_at),
        )

    async def purge_expired(self, before: float) -> None:
        """Delete the links that expired before ``before``, used or not."""
        await self._db.execute("DELETE FROM console_links WHERE expires_at < ?", (before,))

    async def spend(self, token_hash: str, now: float) -> str | None:
        """Mark the link used and return its role; None when it is unknown, used or expired."""
        # Only the one UPDATE that finds it unused and fresh succeeds: two racing sign-ins get one role.
        changed = await self._db.execute(
            "UPDATE console_links SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
            (now, token_hash, now),
        )
        if not changed:
            return None
        row = await self._db.fetchone("SELECT role FROM console_links WHERE token_hash = ?", (token_hash,))
        return str(row["role"]) if row else None


@dataclass(frozen=True, slots=True)
class StoredSession:
    """A ``console_sessions`` row: the role as its stored text, times as epoch seconds."""

    token_hash: str
    user_id: str
    user_name: str
    role: str
    csrf: str
    via: str
    created_at: float
    last_seen: float
    expires_at: float
    user_upn: str = ""  # the identity provider's UPN for the user, where it gave one

    @classmethod
    def from_row(cls, r: Row) -> StoredSession:
        """The session a row holds."""
        return cls(r["token_hash"], r["user_id"], r["user_name"], r["role"], r["csrf"], r["via"],
                   r["created_at"], r["last_seen"], r["expires_at"], r["user_upn"])


class ConsoleSessionTable:
    """Rows of ``console_sessions``: a signed-in browser, by the digest of its cookie token."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, session: StoredSession) -> None:
        """Store a new session."""
        await self._db.execute(
            "INSERT INTO console_sessions (token_hash, user_id, user_name, role, csrf, via, created_at, last_seen, "
            "expires_at, user_upn) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (session.token_hash, session.user_id, session.user_name, session.role, session.csrf, session.via,
             session.created_at, session.last_seen, session.expires_at, session.user_upn),
        )

    async def purge_lapsed(self, now: float, idle_since: float) -> None:
        """Delete the sessions past their limit at ``now`` or not seen since ``idle_since``."""
        await self._db.execute("DELETE FROM console_sessions WHERE expires_at < ? OR last_seen < ?",
                               (now, idle_since))

    async def get(self, token_hash: str) -> StoredSession | None:
        """The session of this token digest, lapsed or not; None when there is none."""
        row = await self._db.fetchone("SELECT * FROM console_sessions WHERE token_hash = ?", (token_hash,))
        return StoredSession.from_row(row) if row else None

    async def touch(self, token_hash: str, now: float) -> None:
        """Note that the session was used at ``now``."""
        await self._db.execute("UPDATE console_sessions SET last_seen = ? WHERE token_hash = ?", (now, token_hash))

    async def delete(self, token_hash: str) -> None:
        """End the session."""
        await self._db.execute("DELETE FROM console_sessions WHERE token_hash = ?", (token_hash,))


@dataclass(frozen=True, slots=True)
class OidcState:
    """A ``console_oidc_states`` row: the state, PKCE verifier and nonce of one sign-in, and when it began."""

    state: str
    verifier: str
    nonce: str
    created_at: float


class OidcStateTable:
    """Rows of ``console_oidc_states``: an OpenID Connect sign-in under way, taken once by its callback."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def purge_older(self, before: float) -> None:
        """Delete the sign-ins started before ``before``."""
        await self._db.execute("DELETE FROM console_oidc_states WHERE created_at < ?", (before,))

    async def count(self) -> int:
        """How many sign-ins are under way."""
        row = await self._db.fetchone("SELECT COUNT(*) AS n FROM console_oidc_states")
        return int(row["n"]) if row else 0

    async def insert(self, started: OidcState) -> None:
        """Store a sign-in just started."""
        await self._db.execute(
            "INSERT INTO console_oidc_states (state, verifier, nonce, created_at) VALUES (?, ?, ?, ?)",
            (started.state, started.verifier, started.nonce, started.created_at))

    async def take(self, state: str) -> OidcState | None:
        """Remove the sign-in ``state`` and return it; None when it is unknown or another caller took it."""
        row = await self._db.fetchone("SELECT * FROM console_oidc_states WHERE state = ?", (state,))
        taken = await self._db.execute("DELETE FROM console_oidc_states WHERE state = ?", (state,))
        if row is None or not taken:
            return None
        return OidcState(row["state"], row["verifier"], row["nonce"], row["created_at"])
