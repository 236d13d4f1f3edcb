"""The ``safelinks`` command: one subcommand module per concept, each adding itself with ``register``.

What every command shares is done here once, not in each module: one error form (``safelinks:
error: …``, after the usage of the subcommand that was mistyped), ``--config`` accepted before or after
the verb, and ``--json`` on every command that changes something (it marks itself with
``set_defaults(changes=True)`` and reports through ``context.done``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterator, Sequence
from typing import NoReturn

from safelinks.cli.context import ERROR_PREFIX, UsageError
from safelinks.cli.exits import ANSWERED, EXIT_INTERRUPTED, failure
from safelinks.version import installed_version

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
    "safelinks.cli.config",
    "safelinks.cli.migrate",
    "safelinks.cli.quarantine",
    "safelinks.cli.coverage",
    "safelinks.cli.console",
)


class CommandParser(argparse.ArgumentParser):
    """argparse with the project's one error form; subcommand parsers are made of this class too."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{ERROR_PREFIX}{message}\n")

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            # argparse leaves these to the top parser; the subcommand they were typed after says it.
            leaf: argparse.ArgumentParser = getattr(parsed, "_parser", self)
            leaf.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="safelinks",
        description="Safe Links for Microsoft Teams: wrap links, check clicks, raise alerts.",
    )
    parser.add_argument("--version", action="version", version=f"teams-safelinks {installed_version()}")
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
    for leaf in leaf_parsers(parser):
        _add_shared_flags(leaf)
    return parser


def leaf_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every parser that runs a command (those without subcommands of their own)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield parser
        return
    seen: set[int] = set()
    for child in subs[0].choices.values():
        if id(child) not in seen:  # aliases map to the same parser
            seen.add(id(child))
            yield from leaf_parsers(child)


def _add_shared_flags(leaf: argparse.ArgumentParser) -> None:
    leaf.set_defaults(_parser=leaf)
    flags = {opt for action in leaf._actions for opt in action.option_strings}
    if "--config" not in flags:
        # SUPPRESS: when not given after the verb, the value given before it (or none) stands.
        leaf.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                          help="YAML config file (else SAFELINKS_CONFIG_FILE)")
    if leaf.get_default("changes") and "--json" not in flags:
        leaf.add_argument("--json", action="store_true", help="print what was done as one JSON object")


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except ANSWERED as exc:
        if isinstance(exc, UsageError):
            getattr(args, "_parser", parser).print_usage(sys.stderr)
        message, code = failure(exc)
        print(f"{ERROR_PREFIX}{message}", file=sys.stderr)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader (head, less) went away; say nothing more.
        sys.stderr.close()
        code = 0
    sys.exit(code)
