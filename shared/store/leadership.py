"""What asking to lead a singleton job gives back (``Leadership``), shared by every backend's ``leader``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from shared.store.errors import StoreError

__all__ = ["LeaderError", "Leadership", "check_request"]


class LeaderError(StoreError):
    """A leadership was asked for with a name or timing that cannot work."""


@dataclass
class Leadership:
    """The outcome of asking to lead ``name``; true while held."""

    name: str
    held: bool
    holder: str
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    backend_pid: int | None = None  # PostgreSQL: the server process holding the lock (for operators)

    def __bool__(self) -> bool:
        return self.held and not self.lost.is_set()


def check_request(name: str, ttl: float) -> None:
    """Refuse (``LeaderError``) a name or ttl no backend can lead with."""
    if not name or len(name) > 200:
        raise LeaderError("a leader name is 1 to 200 characters")
    if ttl < 1:
        raise LeaderError("a leader ttl is at least one second")
