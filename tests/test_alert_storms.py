"""Alert storms: one link fetched in a burst is one alert per thing, one storm alert, few notifications.

End to end over HTTP: the proxy serves the clicks, the engine raises the alerts, the outbox delivers
cards to the Teams stand-in, e-mail to a local SMTP server and webhooks to a local receiver.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from shared.alerts.rules import load_rules
from shared.clicks import Workload
from shared.config import Settings
from shared.signing import LinkContext
from shared.store.alerts import AlertFilter
from shared.verdicts.model import Verdict
from tests.alerts_harness import alerting, click
from tests.conftest import BROWSER_UA, FakeClock
from tests.smtp_server import Mailbox, smtp_server
from tests.teams_standin import CHANNEL_ID, TEAM_ID, BotHarness, TeamsStandIn, running_bot, user
from tests.test_alerts_notify import _drain, _rules
from tests.test_alerts_seed import make_security_channel
from tests.waiting import delivered

pytestmark = pytest.mark.usefixtures("both_backends")  # every test here goes through the store

SOC = user(7, name="Sam Analyst")
TOKEN = "storm-token-0123456789abcdefghijkl"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
STORMED = "https://login.storm-phish.com/reset"
VICTIM = "https://pay.other-phish.com/invoice"
FETCHES = 120


@pytest.fixture
def standin() -> Iterator[TeamsStandIn]:
    teams = TeamsStandIn(members={TEAM_ID: [SOC], CHANNEL_ID: [SOC]}).start()
    yield teams
    teams.stop()


@pytest.fixture
def mail() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as found:
        yield found


def _path(bot: BotHarness, url: str, recipient: str) -> str:
    ctx = LinkContext(workload=Workload.TEAMS, tenant="tenant-1", recipient=recipient)
    return bot.services.signer.wrap(url, ctx).removeprefix(bot.services.settings.public_url)


def _text(message: Any) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    return str(part.get_payload(decode=True).decode("utf-8"))


async def _caught_up(bot: BotHarness) -> None:
    for _ in range(400):
        cursor = await bot.services.db.fetchone("SELECT position FROM alert_cursors WHERE name = 'clicks'")
        last = await bot.services.db.fetchone("SELECT MAX(id) AS id FROM clicks")
        if cursor["position"] >= (last["id"] or 0):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the alert engine never caught up")


async def _settled(check: Callable[[], bool], timeout: float = 15.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not within the time allowed")


async def test_a_burst_of_fetches_is_one_alert_one_storm_alert_and_the_victim_still_gets_mail(
        make_settings: Callable[..., Settings], standin: TeamsStandIn, mail: tuple[Mailbox, int],
        aiohttp_server: AiohttpServer) -> None:
    """One wrapped link fetched 120 times in 6 s: one High alert (count 120) and one storm alert, in one
    incident, one card edited a few times; the daily e-mail limit spent, a new victim's alert still mails."""
    hooks: list[dict[str, Any]] = []

    async def receive(request: web.Request) -> web.Response:
        hooks.append(await request.json())
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", receive)
    server = await aiohttp_server(app)
    box, port = mail
    settings = make_settings(api_tokens=TOKEN, admins=SOC["aadObjectId"], smtp_host="127.0.0.1", smtp_port=port,
                             smtp_security="none", alert_email_to="soc@contoso.example", alert_email_daily_limit=1,
                             alert_webhook_urls=f"http://127.0.0.1:{server.port}/hook", **standin.bot_settings())
    clock = FakeClock()
    async with running_bot(settings, clock=clock) as bot:
        await bot.services.admin_verdicts.set("storm-phish.com", Verdict.MALICIOUS, threat_types=("Phish",))
        await bot.services.admin_verdicts.set("other-phish.com", Verdict.MALICIOUS, threat_types=("Phish",))
        await make_security_channel(bot, standin)
        path = _path(bot, STORMED, "adele@contoso.example")
        for _ in range(FETCHES // 10):  # a script: ten at a time, 120 in six seconds
            answers = await asyncio.gather(*(bot.client.get(path, headers={"User-Agent": BROWSER_UA},
                                                            allow_redirects=False) for _ in range(10)))
            assert [a.status for a in answers] == [200] * 10
            clock.now += timedelta(seconds=0.5)
        await _caught_up(bot)
        response = await bot.client.get(_path(bot, VICTIM, "megan@contoso.example"),
                                        headers={"User-Agent": BROWSER_UA}, allow_redirects=False)
        assert response.status == 200
        await _caught_up(bot)
        async with bot.client.get("/api/v1/alerts", headers=AUTH) as r:
            alerts = (await r.json())["value"]
        by_rule = {(a["detectorId"], a["evidence"][1]["userAccount"]["userPrincipalName"]): a for a in alerts}
        assert sorted(by_rule) == [("click-storm", "adele@contoso.example"),
                                   ("teams-malicious-click", "adele@contoso.example"),
                                   ("teams-malicious-click", "megan@contoso.example")]
        first = by_rule[("teams-malicious-click", "adele@contoso.example")]
        storm = by_rule[("click-storm", "adele@contoso.example")]
        assert first["additionalData"]["eventCount"] == FETCHES
        # The storm took every click from the moment 20 were made within a minute: the second ten on.
        assert storm["additionalData"]["eventCount"] == FETCHES - 10
        assert storm["title"] == "Unusual click volume on a malicious link" and storm["severity"] == "medium"
        assert first["incidentId"] == storm["incidentId"] != by_rule[("teams-malicious-click",
                                                                      "megan@contoso.example")]["incidentId"]
        assert len(await bot.rows("clicks")) == FETCHES + 1

        # Mail: one per alert, not per click. The victim's alert opened a new incident, so it is mailed at
        # once although its rule's daily limit of 1 was spent by the storm's first alert.
        await _settled(lambda: len(box.messages) >= 3 and len(hooks) >= 3)
        await delivered(bot.services.db)
        subjects = sorted(str(m["Subject"]) for m in box.messages)
        assert subjects == ["[High] User clicked a malicious link in Teams chat"] * 2 + [
            "[Medium] Unusual click volume on a malicious link"]
        assert sorted(h["title"] for h in hooks) == ["Unusual click volume on a malicious link",
                                                     "User clicked a malicious link in Teams chat",
                                                     "User clicked a malicious link in Teams chat"]
        victim_mail = [m for m in box.messages if "megan@contoso.example" in _text(m)]
        assert len(victim_mail) == 1
        async with bot.client.get(f"/api/v1/alerts/{by_rule[('teams-malicious-click', 'megan@contoso.example')]['id']}",
                                  headers=AUTH) as r:
            assert r.status == 200
        victim = await bot.services.db.fetchone("SELECT details FROM alerts WHERE account_upn = ?",
                                                ("megan@contoso.example",))
        assert "never held" in victim["details"]

        # Teams: one thread per incident, and the stormed incident's card edited a few times, not per click.
        cards = [c for c in standin.delivered() if "alert.resolve" in json.dumps(c.body)]
        posts = [c for c in cards if c.method == "POST"]
        edits = [c for c in cards if c.method == "PUT"]
        print(f"\n{FETCHES} fetches: {len(edits)} card edits")
        assert len(posts) == 2 and len(edits) < FETCHES // 5, (len(posts), len(edits))


async def test_recipient_budget_sends_a_summary_instead_of_silence(make_settings: Callable[..., Settings],
                                                                   tmp_path: Path, db_url: str) -> None:
    """Past a recipient's budget the rest of the window's alerts arrive as one summary; a new incident's
    first e-mail is never held."""
    with smtp_server() as (box, port):
        settings = make_settings(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none",
                                 alert_notify_burst=2, alert_notify_window_seconds=600, database_url=db_url)
        rules = load_rules(_rules(tmp_path, "      email:\n        recipients: [soc@contoso.com]\n"), settings)
        clock = FakeClock()
        async with alerting(settings, clock, rules=rules) as (services, system):
            for n in range(6):  # six people click through one link: one incident, six alerts
                await services.clicks.record(click(clock.now, through=True, user=f"u{n}@contoso.com"))
            await services.clicks.record(click(clock.now, through=True, url="https://elsewhere-phish.com/x",
                                               user="zed@contoso.com", sender="eve@fabrikam.com",
                                               message="1700000000999"))
            await system.engine.process_clicks()
            await system.outbox.run_once()
            assert len(box.messages) == 3  # two within the budget, and the new incident's first
            await _drain(system.outbox, clock)
            alerts, total = await system.writer.alerts.page(AlertFilter(top=100))
    assert total == 7 and len(box.messages) == 4
    subjects = [" ".join(str(m["Subject"]).split()) for m in box.messages]
    summary = next((m for m, s in zip(box.messages, subjects, strict=True)
                    if s.startswith("[Summary] 4 more alerts")), None)
    assert summary is not None, subjects
    text = _text(summary)
    assert all(f"u{n}@contoso.com" in text for n in range(2, 6))
    held = [a for a in alerts if any("held" in n for n in a.details["notes"])]
    assert len(held) == 4


async def test_webhook_budget_sends_an_alerts_summary(make_settings: Callable[..., Settings], tmp_path: Path,
                                                      aiohttp_server: AiohttpServer) -> None:
    """A webhook past its budget gets one ``alerts.summary`` delivery listing the held alerts after the window."""
    received: list[tuple[str, dict[str, Any]]] = []

    async def receive(request: web.Request) -> web.Response:
        received.append((request.headers.get("X-SafeLinks-Event", ""), await request.json()))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", receive)
    server = await aiohttp_server(app)
    settings = make_settings(alert_notify_burst=1, alert_notify_window_seconds=300)
    hook = f"http://127.0.0.1:{server.port}/hook"
    rules = load_rules(_rules(tmp_path, f"      webhooks:\n        - url: {hook}\n"), settings)
    clock = FakeClock()
    async with alerting(settings, clock, rules=rules) as (services, system):
        for n in range(4):
            await services.clicks.record(click(clock.now, through=True, user=f"u{n}@contoso.com"))
        await system.engine.process_clicks()
        await system.outbox.run_once()
        assert [event for event, _ in received] == ["alert.created"]
        await _drain(system.outbox, clock)
    assert [event for event, _ in received] == ["alert.created", "alerts.summary"]
    summary = received[1][1]
    assert summary["heldCount"] == 3 and sorted(h["user"] for h in summary["held"]) == [
        "u1@contoso.com", "u2@contoso.com", "u3@contoso.com"]
