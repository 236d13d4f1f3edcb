"""What a click gets, as Defender decides it: tenant list, then the reader's policy, then the verdict."""

from __future__ import annotations

import pytest

from proxy.decision import Outcome, Page, decide, protected
from shared.clicks import ActionType, Workload
from shared.policy import SafeLinksPolicy
from shared.urllists.tenant_list import TablAction
from shared.verdicts import Verdict, VerdictResult

A = ActionType
ON = SafeLinksPolicy(name="on")
CLICK_THROUGH = SafeLinksPolicy(name="through", allow_click_through=True)
NO_SCANS = SafeLinksPolicy(name="no-scans", scan_urls=False)
TEAMS_OFF = SafeLinksPolicy(name="teams-off", enable_safe_links_for_teams=False)


def _v(verdict: Verdict, source: str = "feed") -> VerdictResult:
    return VerdictResult(verdict, source)


# policy, workload, tenant list, verdict -> page, ActionType, click-through offered, verdict shown, source
TABLE = [
    # The tenant list comes first: a block is final, an allow skips every verdict and the policy.
    (ON, Workload.TEAMS, TablAction.BLOCK, _v(Verdict.CLEAN),
     Outcome(Page.TENANT_BLOCKED, A.CLICK_BLOCKED_BY_TENANT_POLICY, False, Verdict.MALICIOUS, "tenant-block")),
    (CLICK_THROUGH, Workload.TEAMS, TablAction.BLOCK, None,
     Outcome(Page.TENANT_BLOCKED, A.CLICK_BLOCKED_BY_TENANT_POLICY, False, Verdict.MALICIOUS, "tenant-block")),
    (TEAMS_OFF, Workload.TEAMS, TablAction.BLOCK, None,
     Outcome(Page.TENANT_BLOCKED, A.CLICK_BLOCKED_BY_TENANT_POLICY, False, Verdict.MALICIOUS, "tenant-block")),
    (ON, Workload.TEAMS, TablAction.ALLOW, _v(Verdict.MALICIOUS),
     Outcome(Page.REDIRECT, A.CLICK_ALLOWED, False, Verdict.CLEAN, "tenant-allow")),
    # Protection off for the workload where the link was shown: the link just opens, whatever is known.
    (TEAMS_OFF, Workload.TEAMS, None, _v(Verdict.MALICIOUS),
     Outcome(Page.REDIRECT, A.CLICK_ALLOWED, False, Verdict.UNKNOWN, "policy-off")),
    (TEAMS_OFF, Workload.EMAIL, None, _v(Verdict.MALICIOUS),
     Outcome(Page.WARNING, A.CLICK_BLOCKED, False, Verdict.MALICIOUS, "feed")),
    # No verdict could be had: the error page, never a silent redirect.
    (ON, Workload.TEAMS, None, None, Outcome(Page.ERROR, A.URL_ERROR_PAGE, False, Verdict.UNKNOWN, "error")),
    # Risky: the warning page; "Continue anyway" only where the policy allows click-through.
    (ON, Workload.TEAMS, None, _v(Verdict.MALICIOUS),
     Outcome(Page.WARNING, A.CLICK_BLOCKED, False, Verdict.MALICIOUS, "feed")),
    (ON, Workload.OFFICE, None, _v(Verdict.SUSPICIOUS, "heuristics"),
     Outcome(Page.WARNING, A.CLICK_BLOCKED, False, Verdict.SUSPICIOUS, "heuristics")),
    (CLICK_THROUGH, Workload.TEAMS, None, _v(Verdict.MALICIOUS),
     Outcome(Page.WARNING, A.CLICK_BLOCKED, True, Verdict.MALICIOUS, "feed")),
    # Pending: the scan page when the policy waits for scans (ScanUrls), else the link opens.
    (ON, Workload.TEAMS, None, _v(Verdict.PENDING, "scan"),
     Outcome(Page.SCAN_IN_PROGRESS, A.URL_SCAN_IN_PROGRESS, False, Verdict.PENDING, "scan")),
    (CLICK_THROUGH, Workload.TEAMS, None, _v(Verdict.PENDING, "scan"),
     Outcome(Page.SCAN_IN_PROGRESS, A.URL_SCAN_IN_PROGRESS, True, Verdict.PENDING, "scan")),
    (NO_SCANS, Workload.TEAMS, None, _v(Verdict.PENDING, "scan"),
     Outcome(Page.REDIRECT, A.CLICK_ALLOWED, False, Verdict.PENDING, "scan")),
    # Clean or unknown: the link opens, and the record says what was known.
    (ON, Workload.TEAMS, None, _v(Verdict.CLEAN, "admin"),
     Outcome(Page.REDIRECT, A.CLICK_ALLOWED, False, Verdict.CLEAN, "admin")),
    (ON, Workload.TEAMS, None, _v(Verdict.UNKNOWN, "none"),
     Outcome(Page.REDIRECT, A.CLICK_ALLOWED, False, Verdict.UNKNOWN, "none")),
]


@pytest.mark.parametrize(("policy", "workload", "tenant", "verdict", "expected"), TABLE)
def test_decision_table(policy: SafeLinksPolicy, workload: Workload, tenant: TablAction | None,
                        verdict: VerdictResult | None, expected: Outcome) -> None:
    """Each row of the decision: tenant list first, then the policy for the workload, then the verdict."""
    assert decide(policy, workload, tenant, verdict) == expected


@pytest.mark.parametrize(
    ("switch", "workload"),
    [("enable_safe_links_for_teams", Workload.TEAMS), ("enable_safe_links_for_email", Workload.EMAIL),
     ("enable_safe_links_for_office", Workload.OFFICE)],
)
def test_protection_follows_the_workloads_own_setting(switch: str, workload: Workload) -> None:
    """Each workload is protected by its own Enable… setting, and only by it."""
    off = SafeLinksPolicy(name="off", **{switch: False})  # type: ignore[arg-type]
    assert not protected(off, workload)
    assert all(protected(off, other) for other in Workload if other is not workload)
