"""Alerts and incidents as stored, with the Graph security enums they use."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.alerts.errors import InvalidChange


class Severity(StrEnum):
    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise InvalidChange(f"unknown severity {value!r}: use informational, low, medium or high") from None


_SEVERITY_RANK = {Severity.INFORMATIONAL: 0, Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3}


class AlertStatus(StrEnum):
    NEW = "new"
    IN_PROGRESS = "inProgress"
    RESOLVED = "resolved"


class IncidentStatus(StrEnum):
    ACTIVE = "active"
    IN_PROGRESS = "inProgress"
    RESOLVED = "resolved"


class Classification(StrEnum):
    UNKNOWN = "unknown"
    FALSE_POSITIVE = "falsePositive"
    TRUE_POSITIVE = "truePositive"
    INFORMATIONAL_EXPECTED_ACTIVITY = "informationalExpectedActivity"


def parse_enum(kind: type[StrEnum], value: str, what: str) -> Any:
    """Accept the Graph spelling case-insensitively (``inprogress``, ``truePositive``)."""
    wanted = value.strip().replace("_", "").replace("-", "").lower()
    for member in kind:
        if member.value.lower() == wanted:
            return member
    allowed = ", ".join(m.value for m in kind)
    raise InvalidChange(f"unknown {what} {value!r}: use {allowed}")


@dataclass(frozen=True, slots=True)
class Comment:
    comment: str
    created_by: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "comment": self.comment,
            "createdByDisplayName": self.created_by,
            "createdDateTime": iso(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class Alert:
    """One stored alert. ``evidence`` is already in Graph ``alertEvidence`` form."""

    id: int
    key: str
    rule_id: str
    title: str
    description: str
    severity: Severity
    category: str
    status: AlertStatus
    classification: Classification
    determination: str
    assigned_to: str | None
    incident_id: int | None
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    first_activity: datetime
    last_activity: datetime
    event_count: int
    url: str
    domain: str
    account_upn: str | None
    account_object_id: str | None
    workload: str
    conversation_id: str | None
    message_id: str | None
    sender: str | None
    report_id: str
    change_id: int | None
    evidence: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    comments: tuple[Comment, ...] = ()
    recommended_actions: str = ""


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    title: str
    severity: Severity
    status: IncidentStatus
    classification: Classification
    determination: str
    assigned_to: str | None
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    first_activity: datetime
    last_activity: datetime
    alert_count: int
    resolving_comment: str = ""
    comments: tuple[Comment, ...] = ()


def iso(value: datetime | None) -> str | None:
    """Graph's timestamp form: UTC with a ``Z``."""
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")
