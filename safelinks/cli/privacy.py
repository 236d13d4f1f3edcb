"""``safelinks privacy export|erase|purge|retention``: a person's data, and how long records are kept."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from safelinks.cli.context import CliError, with_services
from safelinks.cli.table import print_json, print_pairs, print_table
from shared.privacy import PrivacyError, RetentionPolicy, erase_subject, export_subject, purge
from shared.schedule import Scheduler
from shared.services import Services


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("privacy", help="a person's data (export, erase) and retention")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    ex = verbs.add_parser("export", help="everything kept about one person, as JSON")
    ex.add_argument("--user", required=True, metavar="UPN", help="the person's user principal name")
    ex.add_argument("--output", metavar="FILE", help="write to FILE instead of standard output")
    ex.set_defaults(func=_export)
    er = verbs.add_parser("erase", help="pseudonymise one person everywhere (alert counts and incidents stay)")
    er.add_argument("--user", required=True, metavar="UPN", help="the person's user principal name")
    er.add_argument("--yes", action="store_true", help="really erase (without it: show what would change)")
    er.add_argument("--json", action="store_true")
    er.set_defaults(func=_erase)
    pu = verbs.add_parser("purge", help="delete every record past its retention period now")
    pu.add_argument("--json", action="store_true")
    pu.set_defaults(func=_purge)
    rt = verbs.add_parser("retention", help="how long each kind of record is kept, and the last purge")
    rt.set_defaults(func=_retention)


def _export(args: argparse.Namespace) -> int:
    async def work(s: Services) -> dict[str, Any]:
        return await export_subject(s.db, args.user, now=s.clock())

    document = _run(args, work)
    if args.output:
        try:
            Path(args.output).write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot write {args.output}: {exc.strerror}") from None
        total = sum(document["counts"].values())
        print(f"{total} records about {document['subject']['userPrincipalName']} written to {args.output}")
    else:
        print_json(document)
    return 0


def _erase(args: argparse.Namespace) -> int:
    if not args.yes:
        async def preview(s: Services) -> dict[str, Any]:
            return await export_subject(s.db, args.user, now=s.clock())

        counts = _run(args, preview)["counts"]
        print_table(["Table", "Records that would change"], sorted(counts.items()))
        print("Nothing was changed. Run again with --yes to erase.", file=sys.stderr)
        return 0

    async def work(s: Services) -> Any:
        return await erase_subject(s.db, args.user, s.keyring.derived("privacy-pseudonym"))

    done = _run(args, work)
    if args.json:
        print_json({"userPrincipalName": done.subject.upn, "pseudonym": done.alias, "changed": done.changed})
    else:
        print(f"{done.subject.upn} is now {done.alias}")
        print_table(["Table", "Records changed"], sorted(done.changed.items()))
    return 0


def _purge(args: argparse.Namespace) -> int:
    async def work(s: Services) -> dict[str, int]:
        return await purge(s.db, RetentionPolicy.from_settings(s.settings), s.clock())

    done = _run(args, work)
    if args.json:
        print_json(done)
    else:
        print_table(["Records", "Deleted"], list(done.items()))
    return 0


def _retention(args: argparse.Namespace) -> int:
    async def work(s: Services) -> tuple[RetentionPolicy, float, Any]:
        last = (await Scheduler(s.db, []).last_runs()).get("retention")
        return RetentionPolicy.from_settings(s.settings), s.settings.retention_every_hours, last

    policy, every, last = _run(args, work)
    print_pairs([("clicks", f"{policy.clicks} days"), ("Teams messages and users", f"{policy.messages} days"),
                 ("incidents and alerts", f"{policy.alerts} days"), ("sent notifications", f"{policy.outbox} days"),
                 ("audit log", f"{policy.audit} days"), ("purge runs every", f"{every:g} hours"),
                 ("last purge", f"{last.outcome}: {last.detail}" if last else "never")])
    return 0


def _run(args: argparse.Namespace, work: Any) -> Any:
    try:
        return with_services(args, work)
    except PrivacyError as exc:
        raise CliError(str(exc), 2) from None
