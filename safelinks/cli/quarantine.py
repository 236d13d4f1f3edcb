"""``safelinks quarantine list|release``: messages hidden from their readers, and showing them again.

``release`` asks Graph (through the outbox) to clear the message's block; a running worker makes
the call, and ``list`` shows the state it reached (released, or failed with why).
"""

from __future__ import annotations

import argparse
from datetime import datetime

from safelinks.cli.context import CLI_ACTOR, CliError, with_services
from safelinks.cli.table import print_json, print_table
from shared.alerts.actions import Actor
from shared.outbox import Outbox
from shared.quarantine import Mode, QuarantineError, State
from shared.quarantine.service import Quarantine
from shared.services import Services


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    q = sub.add_parser("quarantine", help="Teams messages hidden because of a malicious link")
    verbs = q.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    ls = verbs.add_parser("list", help="quarantined messages, newest first")
    ls.add_argument("--state", choices=[s.value for s in State], help="only messages in this state")
    ls.add_argument("--json", action="store_true", help="print JSON (the API's shape)")
    ls.set_defaults(func=_list)
    rel = verbs.add_parser("release", help="show a hidden message to its readers again")
    rel.add_argument("id", type=int)
    rel.add_argument("--by", help="the name shown on the alert (default: the account running the command, which the "
                     "audit log records)")
    rel.add_argument("--json", action="store_true")
    rel.set_defaults(func=_release)


def _quarantine(services: Services) -> Quarantine:
    return Quarantine(services.db, Outbox(services.db, clock=services.clock),
                      mode=Mode(services.settings.teams_quarantine), clock=services.clock,
                      public_url=services.settings.public_url)


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else ""


def _list(args: argparse.Namespace) -> int:
    async def work(services: Services) -> int:
        records = await _quarantine(services).store.records(state=args.state)
        if args.json:
            print_json([r.to_json() for r in records])
            return 0
        rows = []
        for r in records:
            state = r.state.value + (f": {r.state_detail}" if r.state_detail else "")
            by = r.released_by if r.state in (State.RELEASED, State.RELEASING) else r.requested_by
            rows.append((r.id, r.conversation_id, r.message_id, r.sender or "", len(r.links), r.reason, state,
                         by or "", _when(r.requested_at), _when(r.hidden_at), _when(r.released_at)))
        print_table(("ID", "CONVERSATION", "MESSAGE", "SENDER", "LINKS", "REASON", "STATE", "BY", "REQUESTED",
                     "HIDDEN", "RELEASED"), rows, max_width=48)
        return 0

    return with_services(args, work)


def _release(args: argparse.Namespace) -> int:
    async def work(services: Services) -> int:
        try:
            actor = Actor(CLI_ACTOR.id, args.by or CLI_ACTOR.name, via="cli")
            outcome = await _quarantine(services).release(args.id, actor=actor)
        except QuarantineError as exc:
            raise CliError(str(exc)) from None
        record = outcome.record
        if args.json:
            print_json(record.to_json())
        elif not outcome.changed:  # a repeat succeeds, as `verdict set` does, and says nothing was done
            print(f"unchanged: {outcome.already()}")
        else:
            print(f"message {record.id} is {record.state.value}: a worker asks Microsoft Graph to show it again")
        return 0

    return with_services(args, work)
