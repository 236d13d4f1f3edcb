"""What a source thinks of a URL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class Verdict(StrEnum):
    CLEAN = "clean"
    SUSPICIOUS = "suspicious"
    MALICIOUS = "malicious"
    PENDING = "pending"
    UNKNOWN = "unknown"

    @property
    def risky(self) -> bool:
        """Worth a warning page."""
        return self in (Verdict.MALICIOUS, Verdict.SUSPICIOUS)

    @classmethod
    def parse(cls, value: str) -> Verdict:
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise ValueError(
                f"unknown verdict {value!r}: use clean, suspicious, malicious, pending or unknown"
            ) from None


# Within one tier of sources, the worst opinion wins.
SEVERITY = {
    Verdict.MALICIOUS: 4,
    Verdict.SUSPICIOUS: 3,
    Verdict.PENDING: 2,
    Verdict.CLEAN: 1,
    Verdict.UNKNOWN: 0,
}


@dataclass(frozen=True, slots=True)
class VerdictResult:
    """A verdict with where it came from and why."""

    verdict: Verdict
    source: str
    threat_types: tuple[str, ...] = ()
    detection_method: str = ""
    reasons: tuple[str, ...] = ()
    at: datetime | None = None
    expression: str | None = None
    notice: str | None = None  # text a source requires on warning pages (e.g. Safe Browsing's)

    def to_json(self) -> dict[str, object]:
        return {
            "verdict": self.verdict.value,
            "source": self.source,
            "reasons": list(self.reasons),
            "threat_types": list(self.threat_types),
            "detection_method": self.detection_method,
            "expression": self.expression,
            "at": self.at.isoformat() if self.at else None,
        }


UNKNOWN = VerdictResult(Verdict.UNKNOWN, source="none", reasons=("no source knows this URL",))


class VerdictProvider(Protocol):
    """A source of verdicts. ``tier`` orders sources: lower tiers win outright over higher ones.

    Tiers: 0 admin verdicts, 1 feeds and scans, 2 heuristics (the tenant allow/block list is
    consulted before any of them, by the click decision itself). A source may also set
    ``last_resort = True``: it is asked only when the other sources of its tier have no opinion.
    Scans do: submitting a URL costs the scanner's quota and tells a third party what was clicked,
    which is not worth it for a URL a feed already lists.
    """

    name: str
    tier: int
    # True for sources that answer from memory (admin verdicts, feed indexes, heuristics): they are
    # called directly. Others (network lookups, scans) run under the engine's timeout.
    in_memory: bool

    @property
    def enabled(self) -> bool:
        """Whether to ask this source."""
        ...

    async def check(self, url: str, expressions: list[str]) -> VerdictResult | None:
        """The source's verdict on a URL (given with its lookup expressions), or None if it has none."""
        ...

    async def update(self) -> None:
        """Refresh the source's data (no-op for sources that have nothing to refresh)."""
        ...
