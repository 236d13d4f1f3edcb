"""User reports: a Teams message reported with the "Report to security" message action.

A report keeps the message as evidence, checks its links at once, and raises Defender's alert
"Teams message reported by user as a security risk": informational when its links are clean, high
when one is malicious, with the reporter and the reported sender as user entities. The alert goes
through the same writer as click alerts, so it joins incidents and is posted to the security
channel like them. One reporter reporting one message twice makes one alert.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.alerts.drafts import Draft
from shared.alerts.graph import evidence_verdict, user_account
from shared.alerts.model import Severity, iso
from shared.alerts.rules import Rule, build_rules
from shared.alerts.writer import AlertWriter
from shared.clicks import ActionType, Click, Workload
from shared.config import Settings
from shared.evidence import TeamsMessageEvidence
from shared.quarantine.model import JudgedLink
from shared.store.database import Database, Executor
from shared.store.message_reports import MessageReportStore
from shared.store.messages import EvidenceStore
from shared.store.quarantine import QuarantineStore

RULE_ID = "teams-message-reported"
_RULE = {
    "id": RULE_ID,
    "title": "Teams message reported by user as a security risk",
    "description": "A user reported a Teams message as a security risk with the Report to security message action.",
    "recommended_actions": (
        "Review the reported message and its links. Block a malicious URL, hide the message from its "
        "readers, and check whether other users clicked its links."
    ),
    "severity": "informational",
    "category": "InitialAccess",
    "trigger": "click",  # never run by the engine (no click matches it): the report itself raises it
    "conditions": {"action_type": []},
}


def report_rule(settings: Settings | None = None) -> Rule:
    """The report alert's rule, notified like the built-in rules (e-mail and webhooks from the settings)."""
    found = build_rules([_RULE], settings, "the report rule").get(RULE_ID)
    assert found is not None
    return found


REPORTED = report_rule()
_RANK = {"malicious": 4, "suspicious": 3, "pending": 2, "clean": 1, "unknown": 0}
_NS = "#microsoft.graph.security."


@dataclass(frozen=True, slots=True)
class Reporter:
    user_id: str
    aad_object_id: str | None
    name: str
    upn: str | None = None


@dataclass(frozen=True, slots=True)
class ReportOutcome:
    report_id: int
    alert_id: int | None
    verdict: str
    duplicate: bool


def worst(links: list[JudgedLink]) -> str:
    return max((link.verdict for link in links), key=lambda v: _RANK.get(v, 0), default="unknown")


def _evidence(ev: TeamsMessageEvidence, reporter: Reporter, links: list[JudgedLink], now: datetime
              ) -> list[dict[str, Any]]:
    def base(kind: str, roles: list[str], detailed: list[str], verdict: str = "unknown") -> dict[str, Any]:
        return {"@odata.type": _NS + kind, "createdDateTime": iso(now), "verdict": verdict,
                "remediationStatus": "none", "remediationStatusDetails": None, "roles": roles,
                "detailedRoles": detailed, "tags": []}

    found = [{**base("urlEvidence", ["destination"], ["URL in the reported message"],
                     evidence_verdict(link.verdict)), "url": link.url} for link in links]
    found.append({**base("userEvidence", ["contextual"], ["User who reported the message"]),
                  "userAccount": user_account(reporter.upn, reporter.aad_object_id, reporter.name), "stream": None})
    found.append({**base("userEvidence", ["attacker"], ["Sender of the reported message"]),
                  "userAccount": user_account(ev.sender_upn, ev.sender_aad_object_id, ev.sender_name),
                  "stream": None})
    message = ev.to_graph()
    message["urls"] = [{"@odata.type": _NS + "urlEvidence", "url": u} for u in ev.urls]
    verdict = evidence_verdict(worst(links))
    found.append({**base("teamsMessageEvidence", ["source"], ["Reported Teams message"], verdict), **message})
    return found


class ReportDesk:
    """Stores reports and raises their alerts through ``writer``."""

    def __init__(self, db: Database, writer: AlertWriter, *, quarantine_on: bool = False,
                 rule: Rule = REPORTED) -> None:
        self.db = db
        self.writer = writer
        self.quarantine_on = quarantine_on
        self.rule = rule
        self.evidence = EvidenceStore(db)
        self.reports = MessageReportStore(db)
        self.quarantine = QuarantineStore(db)

    async def report(self, ev: TeamsMessageEvidence, reporter: Reporter, note: str, links: list[JudgedLink], *,
                     now: datetime, channel: str | None, keep_evidence: bool) -> ReportOutcome:
        """Keep the report (and the message, unless the bot already keeps it) and raise its alert."""
        async with self.db.transaction() as tx:
            if keep_evidence:
                await self.evidence.save(ev, tx=tx)
            report_id, duplicate = await MessageReportStore.record(
                tx, conversation_id=ev.conversation_id, message_id=ev.message_id, reporter_id=reporter.user_id,
                reporter_aad_object_id=reporter.aad_object_id, reporter_name=reporter.name[:200],
                note=note[:1000], verdicts=[link.to_json() for link in links], reported_at=now.timestamp())
        verdict = worst(links)
        if duplicate:
            return ReportOutcome(report_id, await self.reports.alert_of(report_id), verdict, True)
        draft = self.draft(report_id, ev, reporter, note, links, now, quarantine_on=self.quarantine_on,
                           rule=self.rule)
        held = await self.quarantine.of_message(ev.conversation_id, ev.message_id)
        if held is not None and draft.overrides is not None:
            # Already quarantined: the card offers Release, not Hide.
            details = json.loads(draft.overrides["details"])
            details["quarantine"] = {"available": self.quarantine_on, "id": held.id, "state": held.state.value,
                                     "requested_by": held.requested_by, "released_by": held.released_by,
                                     "why": held.state_detail}
            draft.overrides["details"] = json.dumps(details)

        async def link_alert(tx: Executor) -> None:
            await MessageReportStore.link_alert(tx, report_id, draft.key)

        await self.writer.write([draft], now=now, channel=channel, tx_extra=link_alert)
        return ReportOutcome(report_id, await self.reports.alert_of(report_id), verdict, False)

    @staticmethod
    def draft(report_id: int, ev: TeamsMessageEvidence, reporter: Reporter, note: str, links: list[JudgedLink],
              now: datetime, *, quarantine_on: bool = False, rule: Rule = REPORTED) -> Draft:
        verdict = worst(links)
        severity = Severity.HIGH if verdict == "malicious" else Severity.INFORMATIONAL
        main = next((link for link in links if link.verdict == verdict), None)
        url = main.url if main else (ev.urls[0] if ev.urls else ev.web_url)
        key = f"{RULE_ID}:{report_id}"
        click = Click(
            report_id=f"report-{report_id}", timestamp=now, url=url, action_type=ActionType.CLICK_ALLOWED,
            workload=Workload.TEAMS, verdict=verdict, account_upn=reporter.upn,
            account_object_id=reporter.aad_object_id, tenant_id=ev.tenant_id, team_id=ev.team_id,
            channel_id=ev.channel_id, conversation_id=ev.conversation_id, message_id=ev.message_id,
            sender=ev.sender_upn or ev.sender_aad_object_id, verdict_source=main.source if main else None,
        )
        reasons = "; ".join(f"{link.url}: {link.verdict}" + (f" ({link.reason})" if link.reason else "")
                            for link in links)
        verdict_json: dict[str, Any] = {
            "verdict": verdict, "source": main.source if main else "", "threatTypes": [],
            "detectionMethod": "User report", "at": iso(now), "reason": reasons or "the message holds no links",
        }
        details = {
            "report": {
                "id": report_id,
                "reporter": {"id": reporter.user_id, "aadObjectId": reporter.aad_object_id, "name": reporter.name,
                             "upn": reporter.upn},
                "sender": {"aadObjectId": ev.sender_aad_object_id, "name": ev.sender_name, "upn": ev.sender_upn},
                "note": note,
                "links": [link.to_json() for link in links],
            },
            "verdict": verdict_json,
            "report_ids": [click.report_id],
            "notes": [],
            "quarantine": {"available": quarantine_on},
        }
        overrides = {
            "severity": severity.value,
            "evidence": json.dumps(_evidence(ev, reporter, links, now)),
            "details": json.dumps(details),
        }
        return Draft(rule, key, (key,), (click,), verdict_json, overrides=overrides)
