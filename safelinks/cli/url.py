"""``safelinks url``: extract links from text, canonicalise URLs, list lookup expressions."""

from __future__ import annotations

import argparse
import json
import sys

from safelinks.cli.context import ERROR_PREFIX
from shared.urls import URLError, canonicalize, expressions, extract_urls


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``url`` command and its subcommands."""
    command = subparsers.add_parser("url", help="URL extraction, canonical form and expressions")
    actions = command.add_subparsers(dest="url_command", required=True)

    extract = actions.add_parser("extract", help="links in the text on stdin, one per line")
    extract.add_argument("--html", action="store_true", help="the text is Teams HTML")
    extract.set_defaults(func=run_extract)

    canon = actions.add_parser("canon", help="Safe Browsing canonical form, one per line")
    canon.add_argument("urls", nargs="+", metavar="URL")
    canon.set_defaults(func=run_canon)

    listing = actions.add_parser("expressions", help="lookup expressions of a URL")
    listing.add_argument("url", metavar="URL")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.set_defaults(func=run_expressions)


def run_extract(args: argparse.Namespace) -> int:
    """Print each link found in stdin."""
    for url in extract_urls(sys.stdin.read(), html=args.html):
        sys.stdout.write(url + "\n")
    return 0


def run_canon(args: argparse.Namespace) -> int:
    """Print the canonical form of each argument; exit 2 if any of them was invalid."""
    status = 0
    for url in args.urls:
        try:
            sys.stdout.write(canonicalize(url) + "\n")
        except URLError as error:
            sys.stderr.write(f"{ERROR_PREFIX}{url!r}: {error}\n")
            status = 2
    return status


def run_expressions(args: argparse.Namespace) -> int:
    """Print the lookup expressions of one URL."""
    try:
        found = expressions(args.url)
    except URLError as error:
        sys.stderr.write(f"{ERROR_PREFIX}{args.url!r}: {error}\n")
        return 2
    if args.json:
        sys.stdout.write(json.dumps(found) + "\n")
    else:
        sys.stdout.writelines(expression + "\n" for expression in found)
    return 0
