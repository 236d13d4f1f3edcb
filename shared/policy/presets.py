"""Defender's preset Safe Links policies, with the values of its recommended-settings table.

Standard and Strict are identical for Safe Links; Built-in protection differs only in leaving
internal senders out of e-mail protection (Teams protection does not depend on it) and letting users
click through warnings. (`DisableUrlRewrite` and
`DeliverMessageAfterScan` are e-mail settings with no counterpart in Teams.) Built-in
protection is the default for everyone no other policy covers.
"""

from __future__ import annotations

from types import MappingProxyType

from shared.policy.model import SafeLinksPolicy

__all__ = [
    "BUILT_IN_PROTECTION",
    "BUILT_IN_PROTECTION_NAME",
    "PRESETS",
    "STANDARD",
    "STANDARD_NAME",
    "STRICT",
    "STRICT_NAME",
]

BUILT_IN_PROTECTION_NAME = "Built-in protection"
STANDARD_NAME = "Standard preset"
STRICT_NAME = "Strict preset"

BUILT_IN_PROTECTION = SafeLinksPolicy(
    name=BUILT_IN_PROTECTION_NAME,
    enable_safe_links_for_teams=True,
    enable_safe_links_for_email=True,
    enable_safe_links_for_office=True,
    track_clicks=True,
    allow_click_through=True,
    scan_urls=True,
    enable_for_internal_senders=False,
)

STANDARD = SafeLinksPolicy(
    name=STANDARD_NAME,
    enable_safe_links_for_teams=True,
    enable_safe_links_for_email=True,
    enable_safe_links_for_office=True,
    track_clicks=True,
    allow_click_through=False,
    scan_urls=True,
    enable_for_internal_senders=True,
)

STRICT = SafeLinksPolicy(
    name=STRICT_NAME,
    enable_safe_links_for_teams=True,
    enable_safe_links_for_email=True,
    enable_safe_links_for_office=True,
    track_clicks=True,
    allow_click_through=False,
    scan_urls=True,
    enable_for_internal_senders=True,
)

# In precedence order: Strict first, Built-in protection last.
PRESETS = MappingProxyType(
    {STRICT_NAME: STRICT, STANDARD_NAME: STANDARD, BUILT_IN_PROTECTION_NAME: BUILT_IN_PROTECTION}
)
