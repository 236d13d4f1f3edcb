"""Who is who: the sender's UPN and home tenant, and who can see a conversation.

Activities carry a user's Teams id, AAD object id and name, but not the UPN (which policies match
on) nor the home tenant (which tells an external sender). Both come from the connector's member
API, cached in the store for a day. Rosters (for user-specific card views) are cached in memory
for a few minutes: they are a convenience, recomputed by any replica.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bot.activity import Account, Member
from bot.contracts import TeamsConnector
from bot.errors import ChannelError
from shared.store.conversations import ConversationStore, StoredUser

log = logging.getLogger("safelinks.bot")
USER_TTL = timedelta(days=1)
ROSTER_TTL = timedelta(minutes=5)
_ROSTER_CACHE_SIZE = 2048


class People:
    def __init__(self, connector: TeamsConnector, store: ConversationStore, clock: Callable[[], datetime]) -> None:
        self._connector = connector
        self._store = store
        self._clock = clock
        self._rosters: dict[str, tuple[datetime, list[Member] | None]] = {}

    async def lookup(self, account: Account, reference: dict[str, Any], conversation_id: str) -> StoredUser | None:
        """The user's UPN and tenant (cached); None when the connector cannot say."""
        if not account.id:
            return None
        cached = await self._store.user(account.id)
        now = self._clock()
        if cached is not None and now - cached.looked_up_at < USER_TTL:
            return cached
        try:
            member = await self._connector.member(reference, conversation_id=conversation_id, user_id=account.id)
        except ChannelError as exc:
            log.info("member lookup for %s failed: %s", account.id, exc)
            return cached
        if member is None:
            return cached
        user = StoredUser(account.id, member.aad_object_id or account.aad_object_id, member.name or account.name,
                          member.upn or member.email, member.tenant_id, now)
        await self._store.remember_users([user])
        return user

    async def roster(self, reference: dict[str, Any], conversation_id: str, limit: int) -> list[Member] | None:
        """The members when there are at most ``limit`` of them; None above that, or when unknown."""
        # A missing entry is a miss. (It used to be a stamp of 0.0 on the monotonic clock, which on a
        # machine up for less than the TTL made every first roster a cached "unknown".)
        now = self._clock()
        cached = self._rosters.get(conversation_id)
        if cached is not None and now - cached[0] < ROSTER_TTL:
            return cached[1]
        try:
            members = await self._connector.members(reference, conversation_id=conversation_id, limit=limit)
        except ChannelError as exc:
            log.info("roster of %s unavailable: %s", conversation_id, exc)
            members = None
        if len(self._rosters) >= _ROSTER_CACHE_SIZE:
            self._rosters.clear()
        self._rosters[conversation_id] = (now, members)
        if members:
            await self._store.remember_users(
                StoredUser(m.id, m.aad_object_id, m.name, m.upn or m.email, m.tenant_id, now) for m in members if m.id)
        return members
