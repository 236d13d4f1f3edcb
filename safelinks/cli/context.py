"""What every command shares: reading settings, opening services, failing with a reason."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from shared.alerts.actions import Actor
from shared.config import Settings, load_settings
from shared.errors import ConfigError, SafeLinksError
from shared.services import Services, open_services

T = TypeVar("T")
ERROR_PREFIX = "safelinks: error: "


def _terminal_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        return "unknown"


# Changes made at the command line are audited as the account that ran it.
CLI_ACTOR = Actor(f"cli:{_terminal_user()}", _terminal_user(), via="cli")


class CliError(SafeLinksError):
    """A command failed for a reason the user can act on; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class UsageError(CliError):
    """A value on the command line is unusable: reported like argparse's own errors, with the usage."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 2)


def settings_from(args: argparse.Namespace, **overrides: object) -> Settings:
    """The settings, with ``--config`` and any command-line overrides applied.

    A bad value that came from the command line is named by its flag (``--port``), not by the
    setting behind it, since the flag is what the user typed.
    """
    flags = {key: "--" + key.replace("_", "-") for key in overrides}
    if getattr(args, "config", None):
        overrides["config_file"] = args.config
        flags["config_file"] = "--config"
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        if exc.problems and all(key in flags for key, _ in exc.problems):
            named = "; ".join(f"{flags[key]}: {msg}" for key, msg in exc.problems)
            raise UsageError(named) from None
        message = str(exc)
        if "config_file" in flags and message.startswith("config_file: "):
            message = "--config: " + message.removeprefix("config_file: ")
        raise CliError(f"bad configuration: {message}", 2) from None


def done(args: argparse.Namespace, message: str, **data: Any) -> None:
    """What a command that changed something reports: one line for people, one JSON object with --json."""
    if getattr(args, "json", False):
        print(json.dumps({"ok": True, **data}, default=str, ensure_ascii=False))
    else:
        print(message)


def with_services(args: argparse.Namespace, work: Callable[[Services], Awaitable[T]]) -> T:
    """Open the services (no background tasks), run ``work``, close them; failures go to ``exits``."""
    settings = settings_from(args)

    async def run() -> T:
        async with open_services(settings, background=False) as services:
            return await work(services)

    return asyncio.run(run())


class Results:
    """A command acting on several values: a line per value for people; with --json, one object at the end."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._json = bool(getattr(args, "json", False))
        self.items: list[dict[str, Any]] = []

    def add(self, message: str, ok: bool = True, **data: Any) -> None:
        self.items.append({"ok": ok, **data})
        if not self._json:
            print(message)

    def finish(self, **data: Any) -> None:
        if self._json:
            print(json.dumps({"ok": all(i["ok"] for i in self.items), **data, "results": self.items},
                             default=str, ensure_ascii=False))
