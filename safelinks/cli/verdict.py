"""``safelinks verdict set|get|list``: admin verdicts, and what the sources think of a URL."""

from __future__ import annotations

import argparse

from safelinks.cli.context import CLI_ACTOR, UsageError, done, with_services
from safelinks.cli.table import print_json, print_pairs, print_table
from shared.services import Services
from shared.urls import URLError
from shared.verdicts import Verdict


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("verdict", help="set or look up verdicts")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    s = verbs.add_parser("set", help="set an admin verdict on a URL, a host or a path prefix")
    s.add_argument("target", help="https://host/path, host/path/ (prefix) or host (whole host)")
    s.add_argument("verdict", help="clean, suspicious, malicious, pending, or unknown (removes it)")
    s.add_argument("--threat", action="append", default=[], help="threat type, e.g. phish, malware")
    s.add_argument("--reason", default="", help="why")
    s.set_defaults(func=_set, changes=True)
    g = verbs.add_parser("get", help="the verdict on a URL and why")
    g.add_argument("url")
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=_get)
    ls = verbs.add_parser("list", help="list admin verdicts")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)


def _set(args: argparse.Namespace) -> int:
    try:
        verdict = Verdict.parse(args.verdict)
    except ValueError as exc:
        raise UsageError(str(exc)) from None

    async def work(s: Services) -> int:
        try:
            change = await s.admin_verdicts.set(args.target, verdict, threat_types=tuple(args.threat),
                                                reason=args.reason, set_by="cli", actor=CLI_ACTOR)
        except URLError as exc:
            raise UsageError(f"{args.target!r}: {exc}") from None
        if change is None:
            done(args, f"unchanged: {args.target} is already {verdict.value}", target=args.target,
                 verdict=verdict.value, changed=False)
        else:
            done(args, f"{change.expression}: {change.old_verdict} -> {change.new_verdict}",
                 target=args.target, expression=change.expression, old_verdict=change.old_verdict,
                 verdict=change.new_verdict, changed=True)
        return 0

    return with_services(args, work)


def _get(args: argparse.Namespace) -> int:
    async def work(s: Services) -> int:
        if s.sources is not None:
            await s.sources.load()  # the feed indexes, from their last good copies
        try:
            result = await s.verdicts.check(args.url)
        except URLError as exc:
            raise UsageError(f"{args.url!r}: {exc}") from None
        blocked = s.tenant_list.match(args.url)
        body = result.to_json()
        body["url"] = args.url
        body["tenant_list"] = None if blocked is None else {"action": blocked.action.value, "entry": blocked.value}
        if args.json:
            print_json(body)
        else:
            print_pairs([("url", args.url), ("verdict", result.verdict.value), ("source", result.source),
                         ("threats", list(result.threat_types)), ("reasons", "; ".join(result.reasons)),
                         ("tenant list", f"{blocked.action.value} ({blocked.value})" if blocked else "no entry")])
        return 0

    return with_services(args, work)


def _list(args: argparse.Namespace) -> int:
    items = with_services(args, lambda s: s.admin_verdicts.list())
    if args.json:
        print_json([{"expression": i.expression, "set_by": i.set_by, **i.result.to_json()} for i in items])
    else:
        print_table(["Expression", "Verdict", "Threats", "Set", "By"],
                    [(i.expression, i.result.verdict.value, list(i.result.threat_types),
                      i.result.at.strftime("%Y-%m-%d %H:%M") if i.result.at else "", i.set_by) for i in items])
    return 0
