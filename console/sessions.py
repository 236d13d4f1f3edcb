"""One-time sign-in links and console sessions, kept in the store so every replica honours them.

Only SHA-256 digests of link and session tokens are stored: a copy of the database signs nobody in.
A link is spent only while it is unused and fresh (``shared.store.console_sessions``), so two browsers
racing with one link get one session between them.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

from shared.config import Settings
from shared.store import Database, open_database
from shared.store.console_sessions import ConsoleLinkTable, ConsoleSessionTable, StoredSession

LINK_SECONDS = 600


class Role(StrEnum):
    """What a signed-in person may do in the console."""

    ADMIN = "admin"  # may look and change
    READER = "reader"  # may look only


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: who, with which role, its CSRF token and how long it lasts."""

    token_hash: str
    user_id: str
    user_name: str
    role: Role
    csrf: str
    via: str
    created_at: float
    last_seen: float
    expires_at: float
    upn: str = ""  # the identity provider's UPN for the user (OpenID Connect), where it gave one

    @property
    def may_change(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def shown_name(self) -> str:
        return self.user_name or self.user_id


def digest(token: str) -> str:
    """The SHA-256 of a link or session token, the only form in which the store keeps it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class SignInLinks:
    """One-time sign-in links (``safelinks console link``)."""

    def __init__(self, db: Database) -> None:
        self._table = ConsoleLinkTable(db)

    async def issue(self, *, now: float, role: Role = Role.ADMIN) -> str:
        """A new link token, valid ``LINK_SECONDS`` for one sign-in."""
        token = secrets.token_urlsafe(32)
        await self._table.insert(digest(token), role.value, created_at=now, expires_at=now + LINK_SECONDS)
        # Spent and lapsed links are of no further use.
        await self._table.purge_expired(now - LINK_SECONDS)
        return token

    async def spend(self, token: str, *, now: float) -> Role | None:
        """The role the link grants, once; None when it is unknown, used or expired."""
        if not token or len(token) > 200:
            return None
        role = await self._table.spend(digest(token), now)
        return Role(role) if role is not None else None


class Sessions:
    """Console sessions, ended by sign-out, by ``idle_seconds`` without use, or after ``max_seconds``."""

    def __init__(self, db: Database, *, idle_seconds: float, max_seconds: float) -> None:
        self._table = ConsoleSessionTable(db)
        self.idle = idle_seconds
        self.max = max_seconds

    async def start(self, user_id: str, user_name: str, role: Role, *, via: str, now: float,
                    upn: str = "") -> tuple[str, Session]:
        """A new session; returns the cookie token and the session."""
        token = secrets.token_urlsafe(32)
        session = Session(digest(token), user_id, user_name, role, secrets.token_urlsafe(32), via,
                          now, now, now + self.max, upn)
        await self._table.insert(StoredSession(session.token_hash, user_id, user_name, role.value, session.csrf,
                                               via, now, now, session.expires_at, upn))
        await self._table.purge_lapsed(now, now - self.idle)
        return token, session

    async def find(self, token: str | None, *, now: float) -> Session | None:
        """The live session of a cookie token; idle or past its absolute limit, none."""
        if not token or len(token) > 200:
            return None
        row = await self._table.get(digest(token))
        if row is None or row.expires_at <= now or row.last_seen + self.idle <= now:
            return None
        if now - row.last_seen > 30:  # one write a half-minute is enough to keep it alive
            await self._table.touch(row.token_hash, now)
        return Session(row.token_hash, row.user_id, row.user_name, Role(row.role), row.csrf, row.via,
                       row.created_at, now, row.expires_at, row.user_upn)

    async def end(self, session: Session) -> None:
        """Sign the session out."""
        await self._table.delete(session.token_hash)


async def issue_link(settings: Settings, *, now: float) -> str:
    """Open the store, make a one-time admin sign-in link, and return it (``safelinks console link``)."""
    db = await open_database(settings.effective_database_url, synchronous=settings.sqlite_synchronous)
    try:
        token = await SignInLinks(db).issue(now=now)
    finally:
        await db.close()
    return f"{settings.public_url}/console/signin?token={token}"
