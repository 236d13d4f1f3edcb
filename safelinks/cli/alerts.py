"""``safelinks alerts|incidents|outbox``: alerts and incidents from the command line, and what waits to be sent.

``--json`` prints exactly what the REST API answers (Graph ``alert`` / ``incident`` shapes).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from safelinks.cli.clicks import SINCE_FORMATS, parse_since
from safelinks.cli.context import CLI_ACTOR, CliError, UsageError, with_services
from safelinks.cli.table import print_json, print_pairs, print_table
from shared.alerts.actions import Actor, Changes
from shared.alerts.errors import AlertError
from shared.alerts.graph import alert_json, incident_json
from shared.alerts.model import AlertStatus, IncidentStatus, Severity, parse_enum
from shared.alerts.system import Alerting
from shared.outbox import Outbox
from shared.redaction import redact_text
from shared.services import Services
from shared.store.alerts import AlertFilter
from shared.store.incidents import IncidentFilter

T = TypeVar("T")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    alerts = sub.add_parser("alerts", help="alerts raised on clicks and verdict changes")
    verbs = alerts.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    ls = verbs.add_parser("list", help="recent alerts, newest first")
    _filters(ls)
    ls.set_defaults(func=_list_alerts)
    show = verbs.add_parser("show", help="one alert with its evidence")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_show_alert)
    res = verbs.add_parser("resolve", help="resolve an alert (its card says so)")
    res.add_argument("id", type=int)
    res.add_argument("--classification", help="truePositive, falsePositive or informationalExpectedActivity")
    res.add_argument("--comment", help="why")
    res.add_argument("--by", default="cli", help="who resolves it (recorded)")
    res.add_argument("--json", action="store_true")
    res.set_defaults(func=_resolve_alert)
    rp = verbs.add_parser("replay", help="run the rules again over stored clicks and verdict changes")
    rp.add_argument("--since", required=True, help=SINCE_FORMATS)
    rp.add_argument("--apply", action="store_true", help="store the alerts (default: only show them)")
    rp.add_argument("--json", action="store_true")
    rp.set_defaults(func=_replay)

    incidents = sub.add_parser("incidents", help="incidents: correlated alerts")
    iverbs = incidents.add_subparsers(dest="verb", metavar="VERB")
    iverbs.required = True
    ils = iverbs.add_parser("list", help="recent incidents, newest first")
    _filters(ils)
    ils.set_defaults(func=_list_incidents)
    ishow = iverbs.add_parser("show", help="one incident with its alerts")
    ishow.add_argument("id", type=int)
    ishow.add_argument("--json", action="store_true")
    ishow.set_defaults(func=_show_incident)

    outbox = sub.add_parser("outbox", help="notifications waiting to be delivered")
    overbs = outbox.add_subparsers(dest="verb", metavar="VERB")
    overbs.required = True
    ols = overbs.add_parser("list", help="what waits, and why (the last error)")
    ols.add_argument("--status", choices=["pending", "done", "failed"], help="default: pending and failed")
    ols.add_argument("--json", action="store_true")
    ols.set_defaults(func=_list_outbox)


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--status")
    p.add_argument("--severity", choices=[s.value for s in Severity])
    p.add_argument("--since", help=SINCE_FORMATS)
    p.add_argument("--top", type=int, default=50)
    p.add_argument("--skip", type=int, default=0)
    p.add_argument("--json", action="store_true")


def _run(args: argparse.Namespace, work: Callable[[Services, Alerting], Awaitable[int]]) -> int:
    from safelinks.alerting import alerting_for

    async def go(services: Services) -> int:
        system = alerting_for(services, Outbox(services.db, clock=services.clock), register_handlers=False)
        try:
            return await work(services, system)
        except AlertError as exc:
            raise CliError(str(exc)) from None

    return with_services(args, go)


def _common(args: argparse.Namespace, kind: Any) -> dict[str, Any]:
    try:
        status = parse_enum(kind, args.status, "status").value if args.status else None
    except AlertError as exc:
        raise UsageError(f"--status: {exc}") from None
    return {
        "status": status,
        "severity": args.severity,
        "since": parse_since(args.since) if args.since else None,
        "top": max(1, args.top),
        "skip": max(0, args.skip),
    }


def _when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if at else ""


def _listing(args: argparse.Namespace, status_kind: Any,
             page: Callable[[Alerting, dict[str, Any]], Awaitable[tuple[Sequence[T], int]]],
             to_json: Callable[[T, str], dict[str, Any]], columns: list[str],
             row: Callable[[T], tuple[Any, ...]]) -> int:
    """A page of alerts or incidents: a table for people, Graph's ``{"@odata.count", "value"}`` with --json."""

    async def work(services: Services, system: Alerting) -> int:
        items, total = await page(system, _common(args, status_kind))
        if args.json:
            url = services.settings.public_url
            print_json({"@odata.count": total, "value": [to_json(item, url) for item in items]})
        else:
            print_table(columns, [row(item) for item in items])
        return 0

    return _run(args, work)


def _list_alerts(args: argparse.Namespace) -> int:
    return _listing(
        args, AlertStatus, lambda system, found: system.writer.alerts.page(AlertFilter(**found)),
        lambda a, url: alert_json(a, public_url=url),
        ["ID", "CREATED", "SEVERITY", "STATUS", "INCIDENT", "USER", "URL", "TITLE"],
        lambda a: (a.id, _when(a.created_at), a.severity.value, a.status.value, a.incident_id,
                   a.account_upn or a.account_object_id, a.url, a.title),
    )


def _show_alert(args: argparse.Namespace) -> int:
    async def work(services: Services, system: Alerting) -> int:
        alert = await system.writer.alerts.get(args.id)
        if alert is None:
            raise CliError(f"no alert {args.id}")
        doc = alert_json(alert, public_url=services.settings.public_url)
        if args.json:
            print_json(doc)
            return 0
        verdict = alert.details.get("verdict", {})
        print_pairs(
            [
                ("Alert", f"#{alert.id} {alert.title}"),
                ("Key", alert.key),
                ("Severity", alert.severity.value),
                ("Status", alert.status.value),
                ("Classification", alert.classification.value),
                ("Assigned to", alert.assigned_to),
                ("Incident", alert.incident_id),
                ("User", alert.account_upn or alert.account_object_id),
                ("URL", alert.url),
                ("Workload", alert.workload),
                ("First click", _when(alert.first_activity)),
                ("Clicks", alert.event_count),
                ("Verdict", f"{verdict.get('verdict')} ({verdict.get('source')})"),
                ("Why", verdict.get("reason")),
                ("Sender", alert.sender),
                ("Evidence", [e["@odata.type"].rsplit(".", 1)[-1] for e in alert.evidence]),
                ("Notes", alert.details.get("notes")),
                ("Comments", [f"{c.created_by}: {c.comment}" for c in alert.comments]),
            ]
        )
        return 0

    return _run(args, work)


def _resolve_alert(args: argparse.Namespace) -> int:
    async def work(services: Services, system: Alerting) -> int:
        alert = await system.actions.update_alert(
            args.id,
            Changes(status="resolved", classification=args.classification, comment=args.comment),
            Actor(args.by, via="cli"),
        )
        if args.json:
            print_json(alert_json(alert, public_url=services.settings.public_url))
        else:
            print(f"alert {alert.id} resolved")
        return 0

    return _run(args, work)


def _replay(args: argparse.Namespace) -> int:
    async def work(services: Services, system: Alerting) -> int:
        report = await system.engine.replay(parse_since(args.since, services.clock()), apply=args.apply,
                                            actor=CLI_ACTOR)
        rows = [
            {
                "key": i.draft.key,
                "rule": i.draft.rule.id,
                "title": i.draft.rule.title,
                "user": i.draft.click.account_upn,
                "url": i.draft.click.url,
                "clickTime": i.draft.click.timestamp.isoformat().replace("+00:00", "Z"),
                "exists": i.exists,
            }
            for i in report.items
        ]
        if args.json:
            print_json(
                {
                    "apply": args.apply,
                    "matched": len(rows),
                    "new": len(report.new),
                    "created": report.created,
                    "value": rows,
                }
            )
            return 0
        print_table(
            ["KEY", "RULE", "USER", "URL", "CLICK", "STORED"],
            [(r["key"], r["rule"], r["user"], r["url"], r["clickTime"], r["exists"]) for r in rows],
        )
        verb = "stored" if args.apply else "would store (dry run; --apply to store)"
        print(
            f"{len(report.items)} matched, {len(report.new)} new; {verb} "
            f"{len(report.created) if args.apply else len(report.new)}"
        )
        return 0

    return _run(args, work)


def _list_incidents(args: argparse.Namespace) -> int:
    return _listing(
        args, IncidentStatus, lambda system, found: system.writer.incidents.page(IncidentFilter(**found)),
        lambda i, url: incident_json(i, public_url=url),
        ["ID", "CREATED", "SEVERITY", "STATUS", "ALERTS", "ASSIGNED", "TITLE"],
        lambda i: (i.id, _when(i.created_at), i.severity.value, i.status.value, i.alert_count, i.assigned_to, i.title),
    )


def _show_incident(args: argparse.Namespace) -> int:
    async def work(services: Services, system: Alerting) -> int:
        incident = await system.writer.incidents.get(args.id)
        if incident is None:
            raise CliError(f"no incident {args.id}")
        alerts = await system.writer.alerts.of_incident(incident.id)
        if args.json:
            print_json(incident_json(incident, alerts, public_url=services.settings.public_url))
            return 0
        print_pairs(
            [
                ("Incident", f"#{incident.id} {incident.title}"),
                ("Severity", incident.severity.value),
                ("Status", incident.status.value),
                ("Assigned to", incident.assigned_to),
                ("Alerts", incident.alert_count),
                ("First activity", _when(incident.first_activity)),
                ("Last activity", _when(incident.last_activity)),
            ]
        )
        print()
        print_table(
            ["ID", "SEVERITY", "STATUS", "USER", "URL", "TITLE"],
            [(a.id, a.severity.value, a.status.value, a.account_upn, a.url, a.title) for a in alerts],
        )
        return 0

    return _run(args, work)


def _list_outbox(args: argparse.Namespace) -> int:
    async def work(services: Services, system: Alerting) -> int:
        if args.status:
            items = await system.outbox.list(args.status)
        else:
            items = await system.outbox.list("pending") + await system.outbox.list("failed")
        if args.json:
            print_json(
                [
                    {
                        "id": i.id,
                        "kind": i.kind,
                        "key": redact_text(i.key),
                        "status": i.status,
                        "attempts": i.attempts,
                        "createdAt": datetime.fromtimestamp(i.created_at, UTC).isoformat(),
                        "nextAttemptAt": datetime.fromtimestamp(i.next_attempt_at, UTC).isoformat(),
                        "lastError": redact_text(i.last_error or "") or None,
                        "dedupeKey": i.dedupe_key,
                    }
                    for i in items
                ]
            )
        else:
            print_table(
                ["ID", "KIND", "STATUS", "TRIES", "NEXT TRY", "TO", "WHY"],
                [
                    (
                        i.id,
                        i.kind,
                        i.status,
                        i.attempts,
                        _when(datetime.fromtimestamp(i.next_attempt_at, UTC)) if i.status == "pending" else "",
                        _target(i.payload),
                        redact_text(i.last_error or ""),
                    )
                    for i in items
                ],
            )
        return 0

    return _run(args, work)


def _target(payload: dict[str, Any]) -> str:
    if "to" in payload:
        return ", ".join(payload["to"])
    return redact_text(str(payload.get("url") or payload.get("target") or ""))
