"""Scanners: services that visit a URL and report what they found, behind one small interface.

The interface (``Scanner``), what a scan finds (``ScanReport``) and how one fails (``ScanError``); a
client for a particular service (``shared.verdicts.urlscan``) implements it, and the scan verdict
source (``shared.verdicts.scans``) uses only this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from shared.errors import SafeLinksError

__all__ = ["ScanError", "ScanFailed", "ScanRefused", "ScanReport", "Scanner"]


class ScanError(SafeLinksError):
    """Base of the scan errors: a scan that could not be made or read."""


class ScanRefused(ScanError):
    """The URL may not be scanned (it points into a private network, or the scanner refused it)."""


class ScanFailed(ScanError):
    """The scanner failed, timed out or answered something unreadable."""


@dataclass(frozen=True, slots=True)
class ScanReport:
    """What a finished scan found."""

    malicious: bool
    score: float
    categories: tuple[str, ...]
    brands: tuple[str, ...]
    result_url: str | None


class Scanner(Protocol):
    """A service that scans URLs: submit, then ask for the result until there is one."""

    async def submit(self, url: str) -> str:
        """Start a scan of `url`; return the scanner's id for it. Raises ScanError."""
        ...

    async def result(self, scan_id: str) -> ScanReport | None:
        """The report, or None while the scan still runs. Raises ScanError."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
