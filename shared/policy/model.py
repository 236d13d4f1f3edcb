"""Safe Links policy settings (the "policy" half of Defender's policy + rule pair).

Field names are Defender's `New-SafeLinksPolicy` parameters in snake_case; policy files may
spell every key either way (`allow_click_through` or `AllowClickThrough`). Defaults are the
PowerShell defaults of `New-SafeLinksPolicy` (so `AllowClickThrough` is off unless set).

Organisation branding: Defender's `EnableOrganizationBranding` switch takes the logo from the
Microsoft 365 theme; there is no theme here, so branding is a `branding` block (name, optional
https logo URL) and `enable_organization_branding` is derived: on exactly when `branding` is
set. A file may still say `EnableOrganizationBranding: false` to switch a block off, or `true`
(which then needs the `branding` block).
"""

from __future__ import annotations

import functools
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator
from pydantic.alias_generators import to_pascal

from shared.errors import ConfigError, SafeLinksError
from shared.urllists.do_not_rewrite import RewriteExemptions, parse_exemption

__all__ = [
    "MAX_NOTIFICATION_TEXT",
    "Branding",
    "DefenderKeysModel",
    "PolicyError",
    "PolicyFileError",
    "ReplyMode",
    "SafeLinksPolicy",
]

MAX_NOTIFICATION_TEXT = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

ReplyMode = Literal["always", "risky-only", "silent"]


class PolicyError(SafeLinksError, ValueError):
    """A policy file, policy, rule or group that cannot be used; the message names the key."""


class PolicyFileError(PolicyError, ConfigError):
    """The configured policy file (``SAFELINKS_POLICY_FILE``) cannot be used."""

    setting = "SAFELINKS_POLICY_FILE"


def plain_text(value: str, what: str, max_len: int) -> str:
    """Strip and check a one-line display text (names, notification text)."""
    text = value.strip()
    if not text:
        raise ValueError(f"{what} must not be empty")
    if len(text) > max_len:
        raise ValueError(f"{what} is {len(text)} characters; at most {max_len} are allowed")
    if _CONTROL.search(text):
        raise ValueError(f"{what} must be one line without control characters")
    return text


class DefenderKeysModel(BaseModel):
    """Frozen, strict about unknown keys, and reading both PascalCase and snake_case keys."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_pascal,
        populate_by_name=True,
    )


class Branding(DefenderKeysModel):
    """Organisation branding shown on warning and notification pages."""

    name: str
    logo_url: HttpUrl | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return plain_text(value, "branding name", 100)

    @field_validator("logo_url")
    @classmethod
    def _https_only(cls, value: HttpUrl | None) -> HttpUrl | None:
        # Warning pages are served over https; a plain-http logo would be mixed content.
        if value is not None and value.scheme != "https":
            raise ValueError("the logo URL must use https")
        return value


class SafeLinksPolicy(DefenderKeysModel):
    """The actions of one Safe Links policy.

    `reply_mode` says how the bot answers a message whose links it wrapped: `always` posts a
    reply card every time, `risky-only` (the default, meant for channels and group chats) only
    when a link is risky or pending, `silent` never replies.
    """

    name: str
    enable_safe_links_for_teams: bool = True
    enable_safe_links_for_email: bool = True
    enable_safe_links_for_office: bool = True
    track_clicks: bool = True
    allow_click_through: bool = False
    scan_urls: bool = True
    scan_wait_seconds: float = Field(default=5.0, ge=0, le=60)
    do_not_rewrite_urls: tuple[str, ...] = ()
    enable_for_internal_senders: bool = True
    custom_notification_text: str | None = None
    branding: Branding | None = None
    reply_mode: ReplyMode = "risky-only"

    @model_validator(mode="before")
    @classmethod
    def _branding_switch(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        keys = [
            k for k in ("EnableOrganizationBranding", "enable_organization_branding") if k in data
        ]
        if not keys:
            return data
        data = dict(data)
        switch = data.pop(keys[0])
        for other in keys[1:]:
            data.pop(other)
        if not isinstance(switch, bool):
            raise ValueError("EnableOrganizationBranding must be true or false")
        has_block = data.get("branding", data.get("Branding")) is not None
        if switch and not has_block:
            raise ValueError("EnableOrganizationBranding needs a 'branding' block with a name")
        if not switch:
            data.pop("branding", None)
            data.pop("Branding", None)
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return plain_text(value, "policy name", 64)

    @field_validator("custom_notification_text")
    @classmethod
    def _notification_text(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return plain_text(value, "custom notification text", MAX_NOTIFICATION_TEXT)

    @field_validator("do_not_rewrite_urls")
    @classmethod
    def _exemptions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(parse_exemption(entry).entry for entry in value)

    @property
    def enable_organization_branding(self) -> bool:
        return self.branding is not None

    @functools.cached_property
    def rewrite_exemptions(self) -> RewriteExemptions:
        """The compiled DoNotRewriteUrls list (built once per policy object)."""
        return RewriteExemptions(self.do_not_rewrite_urls)

    def settings(self) -> dict[str, object]:
        """Defender-named settings in display order, for listings and `--json`."""
        return {
            "Name": self.name,
            "EnableSafeLinksForTeams": self.enable_safe_links_for_teams,
            "EnableSafeLinksForEmail": self.enable_safe_links_for_email,
            "EnableSafeLinksForOffice": self.enable_safe_links_for_office,
            "TrackClicks": self.track_clicks,
            "AllowClickThrough": self.allow_click_through,
            "ScanUrls": self.scan_urls,
            "ScanWaitSeconds": self.scan_wait_seconds,
            "EnableForInternalSenders": self.enable_for_internal_senders,
            "DoNotRewriteUrls": list(self.do_not_rewrite_urls),
            "CustomNotificationText": self.custom_notification_text,
            "EnableOrganizationBranding": self.enable_organization_branding,
            "BrandingName": self.branding.name if self.branding else None,
            "BrandingLogoUrl": str(self.branding.logo_url)
            if self.branding and self.branding.logo_url
            else None,
            "ReplyMode": self.reply_mode,
        }
