"""The exit status and message of a failed command, chosen by the error's type in this one place.

Commands raise what went wrong (a ``ConfigError`` naming its setting, a ``StoreError``, any other
``SafeLinksError``) and ``main`` answers it here; a command that must name what the user typed (a flag,
a file given on the command line) raises ``CliError``/``UsageError`` with its own message instead.
"""

from __future__ import annotations

from collections.abc import Callable

from safelinks.cli.context import CliError
from shared.errors import ConfigError, SafeLinksError
from shared.store.errors import StoreError

EXIT_FAILED = 1  # the command could not do its work (the database is away, a delivery refused)
EXIT_USAGE = 2  # what was given cannot be used: the command line or the configuration
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT



def _configuration(exc: SafeLinksError) -> str:
    return f"bad configuration: {exc.named() if isinstance(exc, ConfigError) else exc}"


def _database(exc: SafeLinksError) -> str:
    return f"database: {exc}"


# First match wins: the most specific types come first.
_ANSWERS: tuple[tuple[type[SafeLinksError], int, Callable[[SafeLinksError], str]], ...] = (
    (ConfigError, EXIT_USAGE, _configuration),
    (StoreError, EXIT_FAILED, _database),
    (SafeLinksError, EXIT_FAILED, str),
)


def failure(exc: SafeLinksError) -> tuple[str, int]:
    """The message (after ``safelinks: error: ``) and the exit status for ``exc``."""
    if isinstance(exc, CliError):  # a command's own answer, with its own status
        return str(exc), exc.code
    return next((say(exc), status) for kind, status, say in _ANSWERS if isinstance(exc, kind))
