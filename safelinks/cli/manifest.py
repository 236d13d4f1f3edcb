"""`safelinks manifest build|validate`: the Teams app package an admin uploads.

Exit codes: 0 valid (warnings may be printed), 1 the package has problems or could not be
checked against Microsoft's schema, 2 bad arguments (``safelinks.cli.exits`` answers the manifest
package's errors by type).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from manifest import (
    DEFAULT_CACHE_DIR,
    ManifestProblem,
    PackageInvalid,
    assemble_package,
    has_errors,
    validate_package,
)
from safelinks.cli.exits import EXIT_FAILED
from safelinks.cli.table import print_json
from shared.urls import URLError, base_url

DEFAULT_OUT = Path("var") / "teams-safelinks.zip"
EXIT_OK = 0
EXIT_PROBLEMS = EXIT_FAILED


def _print_problems(problems: tuple[ManifestProblem, ...] | list[ManifestProblem],
                    out: TextIO) -> None:
    for problem in problems:
        print(f"  {problem}", file=out)


def _verdict(problems: tuple[ManifestProblem, ...] | list[ManifestProblem], skipped: bool) -> str:
    if has_errors(problems):
        return f"invalid: {len(problems)} problem(s)"
    suffix = " (schema check skipped)" if skipped else ""
    return f"valid{suffix}" if not problems else f"valid with {len(problems)} warning(s){suffix}"


def _as_browsers_read(public_url: str) -> str:
    """``--public-url`` as a browser reads it (the manifest package parses it on its own, and must see what a
    browser opens: ``https://links.example.com\\safe`` is ``https://links.example.com/safe``). An address no
    browser opens is passed on as given, for the package's check to say what is wrong with it."""
    try:
        return base_url(public_url)
    except URLError:
        return public_url


def run_build(args: argparse.Namespace) -> int:
    """Build the package, validate it, say where it is and whether it is valid."""
    try:
        built = assemble_package(
            args.app_id, _as_browsers_read(args.public_url), Path(args.out), version=args.app_version,
            schema_cache=Path(args.schema_cache), skip_schema=args.skip_schema,
        )
    except PackageInvalid as exc:
        if args.json:
            print_json({"ok": False, "written": None, "field": exc.field,
                        "problems": [str(p) for p in exc.problems]})
        else:
            print(f"not written: {exc.field}: {_verdict(exc.problems, args.skip_schema)}")
            _print_problems(exc.problems, sys.stdout)
        return EXIT_PROBLEMS
    if args.json:
        print_json({"ok": True, "written": str(built.path), "problems": [str(p) for p in built.problems],
                    "schema_checked": not args.skip_schema})
    else:
        print(f"wrote {built.path}: {_verdict(built.problems, args.skip_schema)}")
        _print_problems(built.problems, sys.stdout)
    return EXIT_OK


def run_validate(args: argparse.Namespace) -> int:
    """Validate an existing package and list its problems."""
    problems = validate_package(
        Path(args.package), public_url=None if args.public_url is None else _as_browsers_read(args.public_url),
        schema_cache=Path(args.schema_cache), skip_schema=args.skip_schema,
    )
    print(f"{args.package}: {_verdict(problems, args.skip_schema)}")
    _print_problems(problems, sys.stdout)
    return EXIT_PROBLEMS if has_errors(problems) else EXIT_OK


def _add_schema_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--skip-schema", action="store_true",
        help="do not check against Microsoft's JSON schema (needs npm, or a filled cache)",
    )
    parser.add_argument(
        "--schema-cache", default=str(DEFAULT_CACHE_DIR), metavar="DIR",
        help="where @microsoft/app-manifest is cached or installed (default: %(default)s)",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `manifest build` and `manifest validate` to the safelinks command."""
    parser = subparsers.add_parser(
        "manifest", help="build or validate the Teams app package",
        description="Build or validate the Teams app package (manifest.json and icons).",
    )
    commands = parser.add_subparsers(dest="manifest_command", metavar="COMMAND", required=True)

    build = commands.add_parser(
        "build", help="build the app package for upload to Teams",
        description="Render manifest.json for this deployment, zip it with the icons and "
                    "validate the result. The public URL must be https; http is accepted "
                    "only for localhost/127.0.0.1, with a warning, as Teams refuses it.",
    )
    build.add_argument("--app-id", required=True, metavar="GUID",
                       help="the Entra application id of the bot (Azure Bot registration)")
    build.add_argument("--public-url", required=True, metavar="URL",
                       help="the proxy's public base URL, like https://links.example.com")
    build.add_argument("--out", default=str(DEFAULT_OUT), metavar="FILE",
                       help="where to write the zip (default: %(default)s)")
    build.add_argument("--app-version", default="1.0.0", metavar="X.Y.Z",
                       help="the app version; raise it for every re-upload (default: %(default)s)")
    _add_schema_options(build)
    build.set_defaults(func=run_build, changes=True)

    validate = commands.add_parser(
        "validate", help="validate an app package",
        description="Check an app package against Microsoft's schema and the rules the "
                    "schema does not cover (icons, zip layout, bot id, valid domains).",
    )
    validate.add_argument("package", metavar="FILE.zip", help="the app package")
    validate.add_argument("--public-url", default=None, metavar="URL",
                          help="the proxy's public URL to find in validDomains "
                               "(default: the developer website URL of the manifest)")
    _add_schema_options(validate)
    validate.set_defaults(func=run_validate)
