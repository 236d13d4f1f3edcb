"""What the alert tests share: services on a temporary store, clicks to record, a card recorder."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.alerts.rules import RuleSet
from shared.alerts.system import Alerting, build_alerting
from shared.clicks import ActionType, Click, Workload
from shared.config import Settings
from shared.outbox import Outbox
from shared.services import Services, open_services
from shared.store.database import Executor
from tests.conftest import FakeClock

SECURITY_CHANNEL = "19:security@thread.tacv2"


@dataclass
class CardRecorder:
    """Stands in for the bot's ``post_card``: keeps each card by key (a repeat replaces it)."""

    posts: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    async def __call__(self, outbox: Outbox, channel_ref: str, card: dict[str, Any], *, card_key: str,
                       tx: Executor | None = None) -> None:
        self.posts.append((channel_ref, card_key, card))

    @property
    def cards(self) -> dict[str, dict[str, Any]]:
        return {key: card for _, key, card in self.posts}


def click(
    at: datetime,
    *,
    url: str = "https://login.contoso-phish.com/signin",
    user: str = "adele@contoso.com",
    verdict: str = "malicious",
    action: ActionType = ActionType.CLICK_BLOCKED,
    through: bool = False,
    workload: Workload = Workload.TEAMS,
    message: str | None = "1700000000001",
    report_id: str | None = None,
    sender: str = "mallory@fabrikam.com",
) -> Click:
    return Click(
        report_id=report_id or str(uuid.uuid4()),
        timestamp=at,
        url=url,
        action_type=action,
        workload=workload,
        verdict=verdict,
        account_upn=user,
        account_object_id=f"aad-{user.split('@')[0]}",
        threat_types=("Phish",) if verdict == "malicious" else (),
        detection_methods=("AdminVerdict",) if verdict == "malicious" else (),
        ip_address="203.0.113.0",
        is_clicked_through=through,
        url_chain=(url,),
        tenant_id="tenant-1",
        conversation_id="19:chat-1@unq.gbl.spaces" if workload is Workload.TEAMS else None,
        message_id=message if workload is Workload.TEAMS else None,
        network_message_id=message if workload is Workload.EMAIL else None,
        sender=sender,
        recipient=user,
        user_agent="Mozilla/5.0",
        policy="Built-in protection",
        verdict_source="admin",
    )


@asynccontextmanager
async def alerting(settings: Settings, clock: FakeClock, *, rules: RuleSet | None = None,
                   cards: CardRecorder | None = None) -> AsyncIterator[tuple[Services, Alerting]]:
    async with open_services(settings, clock=clock, background=False) as services:
        outbox = Outbox(services.db, clock=clock)
        system = build_alerting(services, outbox, post_card=cards, rules=rules)
        try:
            yield services, system
        finally:
            await system.webhooks.close()


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
