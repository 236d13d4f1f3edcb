"""Turning events into alert drafts: which rules a click or a verdict change sets off, under which key.

Keys are deterministic, so the same event always makes the same draft: ``rule:ReportId`` for click
rules, ``rule:change:ReportId`` for verdict-change rules (the earliest click of the group names it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.alerts.rules import Rule, RuleSet, Trigger
from shared.clicks import Click
from shared.events import VerdictChanged


@dataclass(frozen=True, slots=True)
class Draft:
    """An alert the engine would raise; ``clicks[0]`` is the click it is named after."""

    rule: Rule
    key: str
    event_keys: tuple[str, ...]
    clicks: tuple[Click, ...]
    verdict: dict[str, Any]
    change_id: int | None = None
    # Stored alert fields that differ from a click's (a reported message is not a click).
    overrides: dict[str, Any] | None = None

    @property
    def click(self) -> Click:
        return self.clicks[0]


def click_verdict(click: Click) -> dict[str, Any]:
    return {
        "verdict": click.verdict,
        "source": click.verdict_source or "",
        "threatTypes": list(click.threat_types),
        "detectionMethod": ", ".join(click.detection_methods) or (click.verdict_source or ""),
        "at": click.timestamp.isoformat().replace("+00:00", "Z"),
        "reason": f"verdict {click.verdict} from {click.verdict_source or 'no source'} at the time of the click",
    }


def change_verdict(change: VerdictChanged) -> dict[str, Any]:
    return {
        "verdict": change.new_verdict,
        "previousVerdict": change.old_verdict,
        "source": change.source,
        "threatTypes": list(change.threat_types),
        "detectionMethod": "URL verdict change",
        "at": change.changed_at.isoformat().replace("+00:00", "Z"),
        "reason": change.reason or f"{change.source} changed its verdict on {change.expression}",
        "expression": change.expression,
        "changeId": change.change_id,
    }


def click_drafts(rules: RuleSet, click: Click) -> list[Draft]:
    """The drafts one stored click sets off."""
    found = []
    for rule in rules.for_trigger(Trigger.CLICK):
        if rule.click.matches(click):
            key = f"{rule.id}:{click.report_id}"
            found.append(Draft(rule, key, (key,), (click,), click_verdict(click)))
    return found


def _group_value(click: Click, entity: str) -> str:
    if entity == "user":
        return (click.account_upn or click.account_object_id or "").lower() or f"anon:{click.report_id}"
    if entity == "message":
        message = click.message_id or click.network_message_id
        return f"{click.conversation_id or ''}/{message}" if message else f"none:{click.report_id}"
    if entity == "url":
        return click.url
    if entity == "sender":
        return (click.sender or "").lower()
    if entity == "workload":
        return click.workload.value
    return click.report_id


def change_drafts(rule: Rule, change: VerdictChanged, clicks: Iterable[Click]) -> list[Draft]:
    """One draft per group (user and message, by default) of the clicks found before a change."""
    groups: dict[tuple[str, ...], list[Click]] = {}
    for click in sorted(clicks, key=lambda c: (c.timestamp, c.report_id, c.is_clicked_through)):
        groups.setdefault(tuple(_group_value(click, e) for e in rule.one_alert_per), []).append(click)
    verdict = change_verdict(change)
    drafts = []
    for members in groups.values():
        keys = tuple(dict.fromkeys(f"{rule.id}:{change.change_id}:{c.report_id}" for c in members))
        drafts.append(Draft(rule, keys[0], keys, tuple(members), verdict, change.change_id))
    return drafts


def window_of(rule: Rule, changed_at: datetime) -> tuple[float, float]:
    """The look-back window of a change, as epoch seconds (start inclusive, end inclusive)."""
    end = changed_at.timestamp()
    return end - rule.lookback_seconds, end
