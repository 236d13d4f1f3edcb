"""One alert per thing to look at: repeat clicks fold into the open alert, over HTTP and in the engine."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from shared.alerts.engine import CLICKS
from shared.clicks import Workload
from shared.config import Settings
from shared.signing import LinkContext
from shared.store.alerts import AlertFilter
from shared.verdicts.model import Verdict
from tests.alerts_harness import alerting, click, hours
from tests.conftest import BROWSER_UA, FakeClock
from tests.teams_standin import BotHarness, running_bot

pytestmark = pytest.mark.usefixtures("both_backends")  # every test here goes through the store

TOKEN = "folding-token-0123456789abcdefghij"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PHISH = "https://login.contoso-phish.com/reset"


async def _alerts(bot: BotHarness, want: int) -> list[dict[str, Any]]:
    """The alerts once ``want`` are stored and the engine has caught up with every click."""
    for _ in range(200):
        async with bot.client.get("/api/v1/alerts", headers=AUTH) as r:
            body = await r.json()
        cursor = await bot.services.db.fetchone("SELECT position FROM alert_cursors WHERE name = 'clicks'")
        last = await bot.services.db.fetchone("SELECT MAX(id) AS id FROM clicks")
        if body["@odata.count"] >= want and cursor["position"] >= (last["id"] or 0):
            return list(body["value"])
        await asyncio.sleep(0.05)
    raise AssertionError(f"never {want} alerts")


def _link(bot: BotHarness, recipient: str) -> str:
    # A link with no message reference (wrapped by the CLI or an integration for one user).
    ctx = LinkContext(workload=Workload.TEAMS, tenant="tenant-1", recipient=recipient, recipient_id=None)
    return bot.services.signer.wrap(PHISH, ctx).removeprefix(bot.services.settings.public_url)


async def _click(bot: BotHarness, path: str) -> None:
    response = await bot.client.get(path, headers={"User-Agent": BROWSER_UA}, allow_redirects=False)
    assert response.status == 200  # the warning page


async def test_repeat_clicks_by_one_user_update_the_open_alert(make_settings: Callable[..., Settings]) -> None:
    """Two blocked clicks by one user on one link a second apart make one alert (count 2, last click), two
    clicks in the log; another user gets their own alert; once resolved, the next click raises a new one."""
    clock = FakeClock()
    async with running_bot(make_settings(api_tokens=TOKEN), clock=clock) as bot:
        await bot.services.admin_verdicts.set("contoso-phish.com", Verdict.MALICIOUS, threat_types=("Phish",))
        alice = _link(bot, "alice@contoso.example")
        await _click(bot, alice)
        first = (await _alerts(bot, 1))[0]
        clock.now += timedelta(seconds=1)
        await _click(bot, alice)
        for _ in range(100):
            (alert,) = await _alerts(bot, 1)
            if alert["additionalData"]["eventCount"] == 2:
                break
            await asyncio.sleep(0.05)
        assert alert["id"] == first["id"] and alert["title"] == "User clicked a malicious link in Teams chat"
        assert alert["additionalData"]["eventCount"] == 2
        assert alert["lastActivityDateTime"] > alert["firstActivityDateTime"]
        assert len(await bot.rows("clicks")) == 2 and len(await bot.rows("alert_events")) == 2

        await _click(bot, _link(bot, "bob@contoso.example"))
        assert len(await _alerts(bot, 2)) == 2

        async with bot.client.patch(f"/api/v1/alerts/{first['id']}", json={"status": "resolved"},
                                    headers=AUTH) as r:
            assert r.status == 200, await r.text()
        clock.now += timedelta(seconds=1)
        await _click(bot, alice)
        found = await _alerts(bot, 3)
        assert sorted(a["additionalData"]["eventCount"] for a in found) == [1, 1, 2]


async def test_folded_clicks_stay_folded_across_replays_and_restarts(settings: Settings) -> None:
    """Replaying or re-reading folded clicks stores nothing new and reports nothing new."""
    clock = FakeClock()
    async with alerting(settings, clock) as (services, system):
        for n in range(3):
            await services.clicks.record(click(clock.now + timedelta(seconds=n), message=None))
        assert await system.engine.process_clicks() == 1
        await services.db.execute("UPDATE alert_cursors SET position = 0 WHERE name = ?", (CLICKS,))
        assert await system.engine.process_clicks() == 0
        report = await system.engine.replay(clock.now - hours(1), apply=True)
        assert report.created == [] and report.new == [] and len(report.items) == 3
        (alert,), total = await system.writer.alerts.page(AlertFilter())
        assert total == 1 and alert.event_count == 3


async def test_verdict_change_alerts_are_never_aggregated_across_users(settings: Settings) -> None:
    """Defender's rule holds: a verdict turning malicious raises one alert per user who clicked, however many."""
    clock = FakeClock()
    async with alerting(settings, clock) as (services, system):
        for n, user in enumerate(["a@contoso.com", "b@contoso.com", "a@contoso.com"]):
            await services.clicks.record(click(clock.now - hours(1) + timedelta(seconds=n), user=user,
                                               verdict="clean", message=None))
        await system.engine.process_clicks()
        await services.admin_verdicts.set("contoso-phish.com", Verdict.MALICIOUS, now=clock.now.timestamp())
        await system.engine.process_changes()
        alerts, _ = await system.writer.alerts.page(AlertFilter(rule_id="malicious-url-click"))
        assert sorted((a.account_upn, a.event_count) for a in alerts) == [("a@contoso.com", 2),
                                                                           ("b@contoso.com", 1)]
