"""A finding of package validation: which field, what is wrong, how bad."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class ManifestProblem:
    """One validation finding.

    `field` is a JSON pointer into manifest.json (`/bots/0/botId`), or, for the layout of
    the archive itself, `zip:<entry name>`. Only `error` findings make a package invalid;
    a `warning` is worth reading but Teams may still accept the package.
    """

    field: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"{self.severity} {self.field or '/'}: {self.message}"


def has_errors(problems: list[ManifestProblem] | tuple[ManifestProblem, ...]) -> bool:
    """True when any finding is an error (warnings alone leave a package valid)."""
    return any(p.severity == "error" for p in problems)
