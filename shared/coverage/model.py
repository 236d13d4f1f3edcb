"""Coverage: where the Teams app is installed, what a round found, and the scope it works on.

A *target* is a place the app can be installed: a team (by its Entra group id), a group chat (by
its chat id) or a user's personal scope (by the user's object id). Each has a ``state``:
``covered`` (the app is there), ``installing`` (an install is on its way through the outbox,
perhaps waiting out a throttle), ``failed`` (Graph refused it; ``detail`` says why) or
``excluded`` (listed in ``SAFELINKS_COVERAGE_EXCLUDE``). ``generation`` counts install requests,
so an install overtaken by a later round's request is dropped unsent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from shared.errors import SafeLinksError


class CoverageError(SafeLinksError):
    """Coverage cannot go on (no catalog app, no Graph); the text says why and what to do."""


class Kind(StrEnum):
    TEAM = "team"
    CHAT = "chat"
    USER = "user"

    @property
    def setting(self) -> str:
        """Its word in ``SAFELINKS_COVERAGE``."""
        return self.value + "s"


class State(StrEnum):
    COVERED = "covered"
    INSTALLING = "installing"
    FAILED = "failed"
    EXCLUDED = "excluded"


# What the app's manifest asks consent for in each scope (manifest/manifest.json.j2, resourceSpecific):
# sent as consentedPermissionSet, which the ReadWriteAndConsentSelf… permissions allow.
RSC_PERMISSIONS: dict[Kind, tuple[str, ...]] = {
    Kind.TEAM: ("ChannelMessage.Read.Group",),
    Kind.CHAT: ("ChatMessage.Read.Chat",),
    Kind.USER: (),
}


def install_permission(kind: Kind, *, rsc_consent: bool) -> str:
    """The least Graph application permission an install of ``kind`` needs."""
    scope = {Kind.TEAM: "Team", Kind.CHAT: "Chat", Kind.USER: "User"}[kind]
    consent = "AndConsent" if rsc_consent and RSC_PERMISSIONS[kind] else ""
    return f"TeamsAppInstallation.ReadWrite{consent}SelfFor{scope}.All"


def install_body(graph_url: str, kind: Kind, catalog_app_id: str, *, rsc_consent: bool) -> dict[str, Any]:
    """The POST body that installs the catalog app in ``kind``, consenting to its RSC permissions when asked."""
    body: dict[str, Any] = {"teamsApp@odata.bind": f"{graph_url}/appCatalogs/teamsApps/{catalog_app_id}"}
    if rsc_consent and RSC_PERMISSIONS[kind]:
        body["consentedPermissionSet"] = {"resourceSpecificPermissions": [
            {"permissionValue": name, "permissionType": "Application"} for name in RSC_PERMISSIONS[kind]]}
    return body


@dataclass(frozen=True, slots=True)
class Scope:
    """Which kinds are covered, and for whom: everyone, or listed groups and users, less the exclusions."""

    kinds: frozenset[Kind]
    groups: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()  # object ids or UPNs, lower case
    exclude: frozenset[str] = frozenset()  # any id or UPN, lower case

    @classmethod
    def parse(cls, words: Iterable[str], *, groups: Iterable[str] = (), users: Iterable[str] = (),
              exclude: Iterable[str] = ()) -> Scope:
        kinds = set()
        for word in (w.strip().lower() for w in words):
            if word == "all":
                kinds |= set(Kind)
            elif word != "off":
                kinds.add(next(k for k in Kind if k.setting == word))
        return cls(frozenset(kinds), _lower(groups), _lower(users), _lower(exclude))

    @property
    def everyone(self) -> bool:
        return not self.groups and not self.users

    def excludes(self, *names: str | None) -> bool:
        return any(n and n.lower() in self.exclude for n in names)


@dataclass(frozen=True, slots=True)
class Target:
    kind: Kind
    id: str
    name: str
    state: State
    detail: str | None
    generation: int
    seen_at: datetime
    updated_at: datetime
    installed_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "id": self.id, "name": self.name, "state": self.state.value,
                "why": self.detail, "seenAt": iso(self.seen_at), "updatedAt": iso(self.updated_at),
                "installedAt": iso(self.installed_at)}


@dataclass(frozen=True, slots=True)
class Round:
    """A kind's last discovery: when, whether it went through, what it found."""

    kind: Kind
    started_at: datetime
    finished_at: datetime | None
    outcome: str  # running | ok | failed
    detail: str
    found: int

    def to_json(self) -> dict[str, Any]:
        return {"startedAt": iso(self.started_at), "finishedAt": iso(self.finished_at), "outcome": self.outcome,
                "detail": self.detail, "found": self.found}


@dataclass(frozen=True, slots=True)
class KindSummary:
    """Counts of one kind: covered, not covered (installing or failed), excluded."""

    kind: Kind
    counts: dict[State, int]
    last_round: Round | None

    @property
    def covered(self) -> int:
        return self.counts.get(State.COVERED, 0)

    @property
    def failed(self) -> int:
        return self.counts.get(State.FAILED, 0)

    @property
    def installing(self) -> int:
        return self.counts.get(State.INSTALLING, 0)

    @property
    def excluded(self) -> int:
        return self.counts.get(State.EXCLUDED, 0)

    @property
    def in_scope(self) -> int:
        return self.covered + self.installing + self.failed

    @property
    def percent(self) -> float | None:
        """Covered share of what is in scope, or None when nothing is."""
        return 100.0 * self.covered / self.in_scope if self.in_scope else None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "covered": self.covered, "notCovered": self.installing + self.failed,
                "installing": self.installing, "failed": self.failed, "excluded": self.excluded,
                "inScope": self.in_scope,
                "percent": round(self.percent, 1) if self.percent is not None else None,
                "lastRound": self.last_round.to_json() if self.last_round else None}


def _lower(items: Iterable[str]) -> frozenset[str]:
    return frozenset(i.strip().lower() for i in items if i.strip())


def iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z") if at else None
