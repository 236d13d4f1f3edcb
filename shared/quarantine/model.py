"""Quarantined Teams messages: what was hidden, why, by whom, and where it stands.

A record's ``state`` moves ``hiding`` → ``hidden`` → ``releasing`` → ``released`` (or ``failed``,
with ``state_detail`` saying why: Graph refused, the message is from another organisation, no
team id). ``generation`` counts the hide and release requests; each request's Graph call carries
it, so a call overtaken by a later request (a release queued behind a hide) is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from shared.errors import SafeLinksError


class QuarantineError(SafeLinksError):
    """A quarantine request cannot be honoured; the text says why."""


class QuarantineNotFound(QuarantineError):
    """No such quarantine record."""


class State(StrEnum):
    HIDING = "hiding"
    HIDDEN = "hidden"
    RELEASING = "releasing"
    RELEASED = "released"
    FAILED = "failed"


class Cause(StrEnum):
    ARRIVAL = "arrival"  # judged on arrival
    VERDICT_CHANGE = "verdict-change"  # a verdict turned within the look-back
    MANUAL = "manual"  # an analyst pressed "Hide message"


class Mode(StrEnum):
    OFF = "off"
    MALICIOUS = "malicious"
    RISKY = "risky"

    @property
    def verdicts(self) -> frozenset[str]:
        """The verdicts that hide a message in this mode."""
        return {Mode.OFF: frozenset(), Mode.MALICIOUS: frozenset({"malicious"}),
                Mode.RISKY: frozenset({"malicious", "suspicious"})}[self]


@dataclass(frozen=True, slots=True)
class JudgedLink:
    url: str
    verdict: str
    source: str = ""
    reason: str = ""

    def to_json(self) -> dict[str, str]:
        return {"url": self.url, "verdict": self.verdict, "source": self.source, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class QuarantineRecord:
    id: int
    conversation_id: str
    message_id: str
    target: dict[str, Any]
    sender: str | None
    sender_aad_object_id: str | None
    links: tuple[JudgedLink, ...]
    reason: str
    cause: str
    last_action: str
    state: State
    state_detail: str | None
    generation: int
    page_token: str
    requested_by: str | None
    requested_at: datetime
    hidden_at: datetime | None
    released_by: str | None
    released_at: datetime | None
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "conversation": self.conversation_id,
            "message": self.message_id,
            "sender": self.sender,
            "senderAadObjectId": self.sender_aad_object_id,
            "links": [link.to_json() for link in self.links],
            "reason": self.reason,
            "cause": self.cause,
            "state": self.state.value,
            "why": self.state_detail,
            "requestedBy": self.requested_by,
            "requestedAt": iso(self.requested_at),
            "hiddenAt": iso(self.hidden_at),
            "releasedBy": self.released_by,
            "releasedAt": iso(self.released_at),
            "updatedAt": iso(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class QuarantineOutcome:
    """What a person's hide or release did: the record as it stands, and whether the request changed it.

    ``changed`` is False when the message already was, or was on its way to being, as asked: then
    nothing was recorded (no audit row) and Graph is not asked again.
    """

    record: QuarantineRecord
    changed: bool

    def already(self) -> str:
        """The answer to a request that changed nothing, e.g. ``message 3 is already hidden``."""
        state = self.record.state
        word = {State.HIDING: "being hidden", State.RELEASING: "being released"}.get(state, state.value)
        return f"message {self.record.id} is already {word}"


def iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z") if at else None
