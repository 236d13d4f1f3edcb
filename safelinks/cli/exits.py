"""The exit status and message of a failed command, chosen by the error's type in this one place.

Commands raise what went wrong (a ``ConfigError`` naming its setting, a ``StoreError``, any other
``SafeLinksError``, or one of the manifest package's ``ManifestError``) and ``main`` answers it here; a
command that must name what the user typed (a flag, a file given on the command line) raises
``CliError``/``UsageError`` with its own message instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from manifest import ManifestError, PackageInvalid, SchemaUnavailable
from safelinks.cli.context import CliError
from shared.errors import ConfigError, SafeLinksError
from shared.store.errors import StoreError

EXIT_FAILED = 1  # the command could not do its work (the database is away, a delivery refused)
EXIT_USAGE = 2  # what was given cannot be used: the command line or the configuration
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT

# The roots of every error a command may end with: the manifest package imports nothing of ours, so its
# errors have a root of their own.
ANSWERED = (SafeLinksError, ManifestError)
Failure = SafeLinksError | ManifestError


def _configuration(exc: ConfigError) -> str:
    return f"bad configuration: {exc.named()}"


def _database(exc: StoreError) -> str:
    return f"database: {exc}"


def _schema(exc: SchemaUnavailable) -> str:
    return f"cannot check against Microsoft's manifest schema: {exc.message}"


# First match wins: the most specific types come first. Each answer takes an error of its row's type.
_ANSWERS: tuple[tuple[type[Exception], int, Callable[[Any], str]], ...] = (
    (ConfigError, EXIT_USAGE, _configuration),
    (StoreError, EXIT_FAILED, _database),
    (SafeLinksError, EXIT_FAILED, str),
    (SchemaUnavailable, EXIT_FAILED, _schema),  # the package cannot be checked: no usage problem
    (PackageInvalid, EXIT_FAILED, str),  # the package was checked and has problems
    (ManifestError, EXIT_USAGE, str),  # a bad input to the build: the message names it
)


def failure(exc: Failure) -> tuple[str, int]:
    """The message (after ``safelinks: error: ``) and the exit status for ``exc``."""
    if isinstance(exc, CliError):  # a command's own answer, with its own status
        return str(exc), exc.code
    return next((say(exc), status) for kind, status, say in _ANSWERS if isinstance(exc, kind))
