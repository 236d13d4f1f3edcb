"""`safelinks policy ...`: show a user's effective Safe Links policy, compare the presets."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from safelinks.cli.context import CliError
from shared.policy import PRESETS, PolicyError, load_policies

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the `policy` command (with `show` and `presets`) to the top-level subparsers."""
    policy = subparsers.add_parser(
        "policy", help="Safe Links policies: a user's effective policy, the presets"
    )
    commands = policy.add_subparsers(dest="policy_command", metavar="COMMAND", required=True)

    show = commands.add_parser("show", help="the policy that applies to a user, and why")
    show.add_argument("--user", required=True, metavar="UPN", help="user principal name")
    show.add_argument("--file", type=Path, default=None, metavar="PATH",
                      help="policy file (YAML; default SAFELINKS_POLICY_FILE)")
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show.set_defaults(func=show_policy)

    presets = commands.add_parser("presets", help="the three preset policies side by side")
    presets.add_argument("--json", action="store_true", help="print JSON instead of a table")
    presets.set_defaults(func=show_presets)


def show_policy(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the effective policy of `args.user`; 2 when the policy file is unusable."""
    stream = out or sys.stdout
    path = args.file
    if path is None and hasattr(args, "config"):
        from safelinks.cli.context import settings_from

        path = settings_from(args).policy_file
    try:
        policies = load_policies(path)
    except PolicyError as exc:
        named = "--file" if args.file else "bad configuration: SAFELINKS_POLICY_FILE"
        raise CliError(f"{named}: {exc}", 2) from None
    resolution = policies.resolve(args.user)
    settings = resolution.policy.settings()
    if args.json:
        document = {
            "user": args.user,
            "policy": resolution.policy.name,
            "rule": resolution.rule,
            "reason": resolution.reason,
            "settings": settings,
        }
        json.dump(document, stream, indent=2)
        stream.write("\n")
        return 0
    header = [
        ("User", args.user),
        ("Policy", resolution.policy.name),
        ("Rule", resolution.rule or "-"),
        ("Why", resolution.reason),
    ]
    _table(stream, [(k + ":", v) for k, v in header], heading=None)
    stream.write("\n")
    rows = [(key, _shown(value)) for key, value in settings.items() if key != "Name"]
    _table(stream, rows, heading=("Setting", "Value"))
    return 0


def show_presets(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print Built-in protection, Standard and Strict side by side."""
    stream = out or sys.stdout
    ordered = [PRESETS[name] for name in reversed(list(PRESETS))]
    columns = [p.settings() for p in ordered]
    if args.json:
        json.dump(columns, stream, indent=2)
        stream.write("\n")
        return 0
    keys = [k for k in columns[0] if k != "Name"]
    rows = [(key, *(_shown(c[key]) for c in columns)) for key in keys]
    _table(stream, rows, heading=("Setting", *(p.name for p in ordered)))
    return 0


def _shown(value: object) -> str:
    if value is True:
        return "on"
    if value is False:
        return "off"
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _table(stream: TextIO, rows: Sequence[Sequence[str]], heading: Sequence[str] | None) -> None:
    lines = [list(heading)] if heading else []
    lines.extend(list(row) for row in rows)
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for n, line in enumerate(lines):
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=True)]
        stream.write("  ".join(cells).rstrip() + "\n")
        if heading and n == 0:
            stream.write("  ".join("-" * w for w in widths) + "\n")
