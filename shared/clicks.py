"""A click, shaped like Defender's ``UrlClickEvents`` row, plus the Teams message it came from."""

from __future__ import annotations

import ipaddress
import os
import random
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any


class ActionType(StrEnum):
    """What the proxy did with a click (Defender's ``ActionType`` values)."""

    CLICK_ALLOWED = "ClickAllowed"
    CLICK_BLOCKED = "ClickBlocked"
    CLICK_BLOCKED_BY_TENANT_POLICY = "ClickBlockedByTenantPolicy"
    URL_SCAN_IN_PROGRESS = "UrlScanInProgress"
    URL_ERROR_PAGE = "UrlErrorPage"


class Workload(StrEnum):
    """Where the wrapped link was shown."""

    TEAMS = "Teams"
    EMAIL = "Email"
    OFFICE = "Office"

    @classmethod
    def parse(cls, value: str) -> Workload:
        for member in cls:
            if member.value.lower() == value.strip().lower():
                return member
        raise ValueError(f"unknown workload {value!r}: use Teams, Email or Office")


# The export columns, in Defender's order and spelling, then the Teams message reference.
URL_CLICK_EVENT_COLUMNS = (
    "Timestamp",
    "Url",
    "ActionType",
    "AccountUpn",
    "Workload",
    "NetworkMessageId",
    "ThreatTypes",
    "DetectionMethods",
    "IPAddress",
    "IsClickedThrough",
    "UrlChain",
    "ReportId",
)
TEAMS_COLUMNS = (
    "AccountObjectId",
    "TenantId",
    "TeamId",
    "ChannelId",
    "ConversationId",
    "MessageId",
    "Sender",
    "Recipient",
    "UserAgent",
    "Policy",
    "Verdict",
    "VerdictSource",
)
EXPORT_COLUMNS = URL_CLICK_EVENT_COLUMNS + TEAMS_COLUMNS


@dataclass(slots=True)
class Click:
    """One recorded click. ``report_id`` is shared by a warning-page view and its click-through.

    Treated as immutable (derive changes with ``dataclasses.replace``); not declared frozen only
    because a frozen dataclass of this width costs several microseconds more to build on every click.
    """

    report_id: str
    timestamp: datetime
    url: str
    action_type: ActionType
    workload: Workload
    verdict: str
    account_upn: str | None = None
    account_object_id: str | None = None
    network_message_id: str | None = None
    threat_types: tuple[str, ...] = ()
    detection_methods: tuple[str, ...] = ()
    ip_address: str | None = None
    is_clicked_through: bool = False
    url_chain: tuple[str, ...] = field(default=())
    tenant_id: str | None = None
    team_id: str | None = None
    channel_id: str | None = None
    conversation_id: str | None = None
    message_id: str | None = None
    sender: str | None = None
    recipient: str | None = None
    user_agent: str | None = None
    policy: str | None = None
    verdict_source: str | None = None

    def clicked_through(self, at: datetime, ip: str | None, user_agent: str | None) -> Click:
        """The click-through row that follows this warning-page view."""
        return replace(
            self, timestamp=at, is_clicked_through=True, ip_address=ip, user_agent=user_agent
        )

    def to_record(self) -> dict[str, Any]:
        """The row under UrlClickEvents column names (what exports and ``--json`` print)."""
        return {
            "Timestamp": self.timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "Url": self.url,
            "ActionType": self.action_type.value,
            "AccountUpn": self.account_upn or "",
            "Workload": self.workload.value,
            "NetworkMessageId": self.network_message_id or "",
            "ThreatTypes": ",".join(self.threat_types),
            "DetectionMethods": ",".join(self.detection_methods),
            "IPAddress": self.ip_address or "",
            "IsClickedThrough": self.is_clicked_through,
            "UrlChain": list(self.url_chain),
            "ReportId": self.report_id,
            "AccountObjectId": self.account_object_id or "",
            "TenantId": self.tenant_id or "",
            "TeamId": self.team_id or "",
            "ChannelId": self.channel_id or "",
            "ConversationId": self.conversation_id or "",
            "MessageId": self.message_id or "",
            "Sender": self.sender or "",
            "Recipient": self.recipient or "",
            "UserAgent": self.user_agent or "",
            "Policy": self.policy or "",
            "Verdict": self.verdict,
            "VerdictSource": self.verdict_source or "",
        }


@lru_cache(maxsize=4096)
def anonymize_ip(ip: str | None) -> str | None:
    """Keep the network, drop the host: IPv4 /24, IPv6 /48 (as analytics tools customarily do)."""
    if not ip:
        return None
    head, dot, last = ip.rpartition(".")
    if dot and ":" not in ip and last.isdigit() and head.count(".") == 2 and all(
        part.isdigit() and len(part) <= 3 and int(part) < 256 for part in (*head.split("."), last)
    ):
        return f"{head}.0"  # the common case, without building an ipaddress object
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False).network_address)


class ReportIds:
    """UUIDv7-shaped ReportIds: time-ordered, so the unique index grows at its end instead of at
    random places (several times cheaper per insert), and unique across replicas (74 random bits)."""

    def __init__(self) -> None:
        self._random = random.Random(os.urandom(32))

    def new(self, at: float | None = None) -> str:
        ms = int((time.time() if at is None else at) * 1000) & 0xFFFF_FFFF_FFFF
        rand = self._random.getrandbits(74)
        value = (ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
        h = f"{value:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def reversed_host(host: str) -> str:
    """``www.example.com`` → ``moc.elpmaxe.www``: subdomains sort under their parent."""
    return host.lower().rstrip(".")[::-1]
