"""The exceptions of the manifest package: one base, so callers can catch them all."""

from __future__ import annotations

from manifest.problems import ManifestProblem


class ManifestError(Exception):
    """Bad input to a manifest build or validation; the message names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class SchemaUnavailable(ManifestError):
    """Microsoft's manifest JSON schema could not be found in the cache or installed."""


class PackageInvalid(ManifestError):
    """A built package failed validation; `problems` lists every finding."""

    def __init__(self, path: str, problems: tuple[ManifestProblem, ...]) -> None:
        super().__init__(path, f"the package has {len(problems)} problem(s)")
        self.problems = problems
