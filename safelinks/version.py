"""The installed version of teams-safelinks, as the package metadata states it."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def installed_version() -> str:
    try:
        return version("teams-safelinks")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"
