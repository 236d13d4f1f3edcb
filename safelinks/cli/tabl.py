"""``safelinks block`` and ``safelinks allow``: the Tenant Allow/Block List for URLs."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from safelinks.cli.context import CLI_ACTOR, Results, UsageError, with_services
from safelinks.cli.table import print_json, print_table
from shared.services import Services
from shared.urllists.tenant_list import TablAction, TablError
from shared.urllists.tenant_list_entries import TablEntry


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for action in (TablAction.BLOCK, TablAction.ALLOW):
        p = sub.add_parser(action.value, help=f"{action.value} URLs for everyone (Tenant Allow/Block List)")
        verbs = p.add_subparsers(dest="verb", metavar="VERB")
        verbs.required = True
        add = verbs.add_parser("add", help=f"add {action.value} entries")
        add.add_argument("values", nargs="+", metavar="ENTRY", help="e.g. contoso.com, *.contoso.com/*, ~contoso.com")
        when = add.add_mutually_exclusive_group()
        when.add_argument("--days", type=int, help="expire after N days (default 30)")
        when.add_argument("--expires", help="expire at this UTC date (YYYY-MM-DD)")
        if action is TablAction.BLOCK:
            when.add_argument("--no-expiration", action="store_true", help="never expire")
        add.add_argument("--notes", default="", help="why")
        add.set_defaults(func=_add, action=action, changes=True)
        ls = verbs.add_parser("list", help=f"list {action.value} entries")
        ls.add_argument("--json", action="store_true")
        ls.set_defaults(func=_list, action=action)
        rm = verbs.add_parser("remove", help=f"remove {action.value} entries")
        rm.add_argument("values", nargs="+", metavar="ENTRY")
        rm.set_defaults(func=_remove, action=action, changes=True)


def _expiry(args: argparse.Namespace) -> datetime | None:
    now = datetime.now(UTC)
    if args.days is not None:
        if args.days < 1:
            raise UsageError("--days must be at least 1")
        return now + timedelta(days=args.days)
    if args.expires:
        try:
            return datetime.fromisoformat(args.expires).replace(tzinfo=UTC)
        except ValueError:
            raise UsageError(f"--expires {args.expires!r}: use YYYY-MM-DD") from None
    return None


def _add(args: argparse.Namespace) -> int:
    expiry = _expiry(args)

    async def work(s: Services) -> int:
        failed = 0
        results = Results(args)
        for value in args.values:
            try:
                entry = await s.tenant_list.add(value, args.action, expires_at=expiry,
                                                no_expiration=getattr(args, "no_expiration", False),
                                                notes=args.notes, created_by="cli", actor=CLI_ACTOR)
            except TablError as exc:
                results.add(f"refused {value!r}: {exc}", ok=False, value=value, error=str(exc))
                failed += 1
                continue
            until = entry.expires_at.strftime("%Y-%m-%d") if entry.expires_at else "never"
            results.add(f"added {args.action.value} {entry.value} (expires {until})", True, **_row(entry))
        results.finish()
        return 2 if failed else 0

    return with_services(args, work)


def _row(e: TablEntry) -> dict[str, str | None]:
    return {
        "Value": e.value,
        "Action": e.action.value.capitalize(),
        "LastUpdated": e.created_at.isoformat(),
        "RemoveOn": e.expires_at.isoformat() if e.expires_at else None,
        "LastUsed": e.last_used_at.isoformat() if e.last_used_at else None,
        "Notes": e.notes,
    }


def _list(args: argparse.Namespace) -> int:
    entries = with_services(args, lambda s: s.tenant_list.list(args.action))
    rows = [_row(e) for e in entries]
    if args.json:
        print_json(rows)
    else:
        print_table(["Value", "Remove on", "Last used", "Notes"],
                    [(r["Value"], (r["RemoveOn"] or "never")[:10], (r["LastUsed"] or "")[:10], r["Notes"])
                     for r in rows])
    return 0


def _remove(args: argparse.Namespace) -> int:
    async def work(s: Services) -> int:
        missing = 0
        results = Results(args)
        for value in args.values:
            try:
                removed = await s.tenant_list.remove(value, args.action, actor=CLI_ACTOR)
            except TablError as exc:
                results.add(f"refused {value!r}: {exc}", ok=False, value=value, error=str(exc))
                missing += 1
                continue
            results.add(f"removed {value}" if removed else f"not on the {args.action.value} list: {value}",
                        ok=removed, value=value, removed=removed)
            missing += not removed
        results.finish()
        return 1 if missing else 0

    return with_services(args, work)
