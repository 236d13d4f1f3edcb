"""What every command shares: reading settings, opening services, failing with a reason."""

from __future__ import annotations

import argparse
import asyncio
import getpass
from collections.abc import Awaitable, Callable
from typing import TypeVar

from shared.alerts.actions import Actor
from shared.config import ConfigError, Settings, load_settings
from shared.policy import PolicyError
from shared.services import Services, open_services
from shared.signing import SigningError
from shared.store import StoreError

T = TypeVar("T")


def _terminal_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        return "unknown"


# Changes made at the command line are audited as the account that ran it.
CLI_ACTOR = Actor(f"cli:{_terminal_user()}", _terminal_user(), via="cli")


class CliError(Exception):
    """A command failed for a reason the user can act on; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def settings_from(args: argparse.Namespace, **overrides: object) -> Settings:
    """The settings, with ``--config`` and any command-line overrides applied."""
    try:
        if getattr(args, "config", None):
            overrides["config_file"] = args.config
        return load_settings(**overrides)
    except ConfigError as exc:
        raise CliError(f"bad configuration: {exc}", 2) from None


def with_services(args: argparse.Namespace, work: Callable[[Services], Awaitable[T]]) -> T:
    """Open the services (no background tasks), run ``work``, close them."""
    settings = settings_from(args)

    async def run() -> T:
        async with open_services(settings, background=False) as services:
            return await work(services)

    try:
        return asyncio.run(run())
    except PolicyError as exc:
        raise CliError(f"bad configuration: SAFELINKS_POLICY_FILE: {exc}", 2) from None
    except SigningError as exc:
        raise CliError(f"bad configuration: SAFELINKS_SIGNING_KEYS: {exc}", 2) from None
    except StoreError as exc:
        raise CliError(f"database: {exc}") from None
