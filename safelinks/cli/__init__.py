"""The ``safelinks`` command: one subcommand module per concept, each adding itself with ``register``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from safelinks.cli.context import CliError

# Modules that add subcommands; each exposes ``register(subparsers)``.
_COMMAND_MODULES = (
    "safelinks.cli.serve",
    "safelinks.cli.links",
    "safelinks.cli.url",
    "safelinks.cli.policy",
    "safelinks.cli.tabl",
    "safelinks.cli.verdict",
    "safelinks.cli.feeds",
    "safelinks.cli.clicks",
    "safelinks.cli.alerts",
    "safelinks.cli.manifest",
    "safelinks.cli.privacy",
    "safelinks.cli.console",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="safelinks",
        description="Safe Links for Microsoft Teams: wrap links, check clicks, raise alerts.",
    )
    parser.add_argument("--config", metavar="FILE", help="YAML config file (else SAFELINKS_CONFIG_FILE)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except CliError as exc:
        print(f"safelinks: {exc}", file=sys.stderr)
        code = exc.code
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        # The reader (head, less) went away; say nothing more.
        sys.stderr.close()
        code = 0
    sys.exit(code)
