"""``safelinks coverage``: where the Teams app is installed, as the last coverage round found it.

It reads the store only (a worker's round asked Graph): per kind, how many targets are covered, not
covered (an install on its way, or refused) and excluded, the share covered, and the last round;
then every refusal with why. ``--state`` lists the targets in one state instead.
"""

from __future__ import annotations

import argparse
from datetime import datetime

from safelinks.cli.context import with_services
from safelinks.cli.table import print_json, print_table
from shared.coverage import Kind, KindSummary, State
from shared.services import Services
from shared.store.coverage import CoverageStore


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cov = sub.add_parser("coverage", help="where the Teams app is installed: teams, group chats, users")
    cov.add_argument("--state", choices=[s.value for s in State], help="list the targets in this state")
    cov.add_argument("--kind", choices=[k.value for k in Kind], help="only this kind")
    cov.add_argument("--limit", type=int, default=50, help="targets listed at most (default 50; --json: all)")
    cov.add_argument("--json", action="store_true", help="print JSON")
    cov.set_defaults(func=_coverage)


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M") if at else ""


def _percent(s: KindSummary) -> str:
    return f"{s.percent:.1f} %" if s.percent is not None else "-"


def _coverage(args: argparse.Namespace) -> int:
    async def work(services: Services) -> int:
        store = CoverageStore(services.db)
        kind = Kind(args.kind) if args.kind else None
        state = State(args.state) if args.state else None
        summaries = [s for s in await store.summary() if kind is None or s.kind is kind]
        listed = await store.targets(state=state or State.FAILED, kind=kind,
                                     limit=1_000_000 if args.json else max(0, args.limit))
        mode = services.settings.coverage
        if args.json:
            print_json({"coverage": mode, "kinds": [s.to_json() for s in summaries],
                        ("targets" if state else "failed"): [t.to_json() for t in listed]})
            return 0
        if mode == ["off"]:
            print("coverage is off (SAFELINKS_COVERAGE); what an earlier round found is shown")
        rows = []
        for s in summaries:
            last = s.last_round
            round_text = f"{_when(last.started_at)} {last.outcome}" if last else ""
            if last and last.outcome == "failed":
                round_text += f": {last.detail}"
            rows.append((s.kind.setting, s.covered, s.installing + s.failed, s.failed, s.excluded, _percent(s),
                         round_text))
        print_table(("KIND", "COVERED", "NOT COVERED", "FAILED", "EXCLUDED", "COVERAGE", "LAST ROUND"), rows,
                    max_width=100)
        if state is None and not listed:
            return 0
        print()
        print(f"{(state or State.FAILED).value}:")
        print_table(("KIND", "ID", "NAME", "WHY", "UPDATED"),
                    [(t.kind.value, t.id, t.name, t.detail or "", _when(t.updated_at)) for t in listed],
                    max_width=120)
        return 0

    return with_services(args, work)
