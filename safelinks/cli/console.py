"""``safelinks console link``: a one-time sign-in link to the analyst console (valid 10 minutes, once)."""

from __future__ import annotations

import argparse
import asyncio
import time

from safelinks.cli.context import settings_from


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("console", help="the analyst console")
    console_sub = p.add_subparsers(dest="console_command", metavar="SUBCOMMAND")
    console_sub.required = True
    link = console_sub.add_parser("link", help="print a one-time sign-in link (10 minutes, single use, as admin)")
    link.set_defaults(func=run_link)


def run_link(args: argparse.Namespace) -> int:
    from console.sessions import issue_link

    settings = settings_from(args)
    url = asyncio.run(issue_link(settings, now=time.time()))
    print(url)
    return 0
