"""``safelinks clicks list|export|purge``: the click log, under UrlClickEvents column names."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import UTC, datetime, timedelta

from safelinks.cli.context import UsageError, done, settings_from, with_services
from safelinks.cli.table import print_json, print_table
from shared.clicks import EXPORT_COLUMNS
from shared.durations import DurationError, parse_moment
from shared.escaping import csv_cell
from shared.services import Services
from shared.store.clicks import ClickFilter

SINCE_FORMATS = "a time back from now (30s, 15m, 12h, 7d, 2w) or an ISO date or date-time (UTC unless it says)"


def parse_since(text: str, now: datetime | None = None, *, flag: str = "--since") -> datetime:
    """``7d``, ``12h``, ``30m`` back from now, or an ISO date/time (UTC unless it says otherwise)."""
    try:
        return parse_moment(text, now or datetime.now(UTC))
    except DurationError as exc:
        raise UsageError(f"{flag} {exc}") from None


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("clicks", help="the click log")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    ls = verbs.add_parser("list", help="recent clicks")
    ex = verbs.add_parser("export", help="all matching clicks as JSON lines or CSV (UrlClickEvents columns)")
    for q in (ls, ex):
        q.add_argument("--since", help=SINCE_FORMATS)
        q.add_argument("--user", help="AccountUpn")
        q.add_argument("--url", help="part of the URL")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)
    ex.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    ex.set_defaults(func=_export)
    pu = verbs.add_parser("purge", help="delete clicks older than the retention period")
    pu.add_argument("--older-than", help=SINCE_FORMATS + " (default: SAFELINKS_CLICK_RETENTION_DAYS)")
    pu.set_defaults(func=_purge, changes=True)


def _filter(args: argparse.Namespace, limit: int | None = None) -> ClickFilter:
    return ClickFilter(since=parse_since(args.since) if args.since else None, user=args.user,
                       url_contains=args.url, limit=limit)


def _list(args: argparse.Namespace) -> int:
    flt = _filter(args, args.limit)
    clicks = with_services(args, lambda s: s.clicks.list(flt))
    if args.json:
        print_json([c.to_record() for c in clicks])
        return 0
    print_table(["Timestamp", "ActionType", "AccountUpn", "Workload", "Through", "ThreatTypes", "Url"],
                [(c.timestamp.strftime("%Y-%m-%d %H:%M:%S"), c.action_type.value, c.account_upn or "(unknown)",
                  c.workload.value, c.is_clicked_through, list(c.threat_types), c.url) for c in clicks])
    return 0


def _export(args: argparse.Namespace) -> int:
    flt = _filter(args)
    out = sys.stdout

    async def work(s: Services) -> int:
        n = 0
        writer = csv.DictWriter(out, fieldnames=list(EXPORT_COLUMNS)) if args.format == "csv" else None
        if writer:
            writer.writeheader()
        async for click in s.clicks.stream(flt):
            rec = click.to_record()
            if writer:
                row = {**rec, "UrlChain": json.dumps(rec["UrlChain"]),
                       "IsClickedThrough": str(rec["IsClickedThrough"]).lower()}
                writer.writerow({k: csv_cell(v) for k, v in row.items()})
            else:
                out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
        print(f"exported {n} clicks", file=sys.stderr)
        return 0

    return with_services(args, work)


def _purge(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    horizon = parse_since(args.older_than, flag="--older-than") if args.older_than else (
        datetime.now(UTC) - timedelta(days=settings.click_retention_days))

    async def work(s: Services) -> int:
        n = await s.clicks.purge(horizon)
        done(args, f"deleted {n} clicks older than {horizon.strftime('%Y-%m-%d %H:%M')} UTC",
             deleted=n, older_than=horizon.isoformat())
        return 0

    return with_services(args, work)
