"""What to do with a click: one pure function that turns policy, tenant list and verdict into an answer.

Its checks run top to bottom and the first that applies answers (tests/test_decision.py holds every
case as a table). The order is Defender's: the tenant allow/block list first (a block is final, an
allow skips every verdict), then the user's Safe Links policy (protection off for this workload
means the link just opens), then the verdict.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from shared.clicks import ActionType, Workload
from shared.policy import SafeLinksPolicy
from shared.urllists.tenant_list import TablAction
from shared.verdicts import Verdict, VerdictResult


class Page(StrEnum):
    REDIRECT = "redirect"
    WARNING = "warning"
    TENANT_BLOCKED = "blocked"
    SCAN_IN_PROGRESS = "scan"
    ERROR = "error"


class Outcome(NamedTuple):
    # A named tuple, not a frozen dataclass: it is made on every click and builds several times faster.
    page: Page
    action: ActionType
    click_through: bool  # whether the page offers "Continue anyway (not recommended)"
    verdict: Verdict
    source: str


def protected(policy: SafeLinksPolicy, workload: Workload) -> bool:
    """Whether the policy turns Safe Links on for the place the link was shown."""
    if workload == Workload.TEAMS:
        return policy.enable_safe_links_for_teams
    if workload == Workload.EMAIL:
        return policy.enable_safe_links_for_email
    return policy.enable_safe_links_for_office


def decide(
    policy: SafeLinksPolicy,
    workload: Workload,
    tenant_action: TablAction | None,
    verdict: VerdictResult | None,
) -> Outcome:
    """The answer for one click. ``verdict`` is None when it was not needed or could not be had."""
    if tenant_action is TablAction.BLOCK:
        return Outcome(Page.TENANT_BLOCKED, ActionType.CLICK_BLOCKED_BY_TENANT_POLICY, False,
                       Verdict.MALICIOUS, "tenant-block")
    if tenant_action is TablAction.ALLOW:
        return Outcome(Page.REDIRECT, ActionType.CLICK_ALLOWED, False, Verdict.CLEAN, "tenant-allow")
    if not protected(policy, workload):
        return Outcome(Page.REDIRECT, ActionType.CLICK_ALLOWED, False, Verdict.UNKNOWN, "policy-off")
    if verdict is None:
        return Outcome(Page.ERROR, ActionType.URL_ERROR_PAGE, False, Verdict.UNKNOWN, "error")
    if verdict.verdict.risky:
        return Outcome(Page.WARNING, ActionType.CLICK_BLOCKED, policy.allow_click_through,
                       verdict.verdict, verdict.source)
    if verdict.verdict is Verdict.PENDING and policy.scan_urls:
        return Outcome(Page.SCAN_IN_PROGRESS, ActionType.URL_SCAN_IN_PROGRESS, policy.allow_click_through,
                       verdict.verdict, verdict.source)
    # Pending without ScanUrls: the policy does not wait for scans, so the link opens.
    return Outcome(Page.REDIRECT, ActionType.CLICK_ALLOWED, False, verdict.verdict, verdict.source)
