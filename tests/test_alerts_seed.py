"""The seed scenario end to end over HTTP: Teams message → wrapped link → warning → continue → alerts.

The Teams stand-in plays Teams (activities in, bot posts out), a local aiosmtpd server receives the
alert e-mail, and every step a person takes (a message, a click, "Continue anyway", a card button,
the REST API) is an HTTP request to the one application.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from shared.alerts.engine import CHANGES
from shared.clicks import Workload
from shared.config import Settings
from shared.signing import LinkContext
from shared.verdicts.model import Verdict
from tests.conftest import BROWSER_UA, FakeClock
from tests.seed_cast import ALICE, BOB, PHISH, POLICIES, SOC, cast_standin
from tests.smtp_server import Mailbox, smtp_server
from tests.teams_standin import (
    CHANNEL_ID,
    GROUP_CHAT_ID,
    BotHarness,
    TeamsStandIn,
    card_action,
    channel_post,
    group_chat_message,
    running_bot,
    sender_of,
)
from tests.waiting import eventually

TOKEN = "seed-scenario-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
_TOKEN_FIELD = re.compile(r'name="token" value="([^"]+)"')


@pytest.fixture
def standin() -> Iterator[TeamsStandIn]:
    yield from cast_standin()


@pytest.fixture
def mail() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as found:
        yield found


@pytest.fixture
def seed_settings(both_backends: str, make_settings: Callable[..., Settings], standin: TeamsStandIn,
                  mail: tuple[Mailbox, int], tmp_path: Path) -> Settings:
    policy = tmp_path / "policies.yaml"
    policy.write_text(POLICIES, encoding="utf-8")
    return make_settings(policy_file=policy, admins=SOC["aadObjectId"], api_tokens=TOKEN,
                         smtp_host="127.0.0.1", smtp_port=mail[1], smtp_security="none",
                         alert_email_to="soc@contoso.example", **standin.bot_settings())


async def send(bot: BotHarness, standin: TeamsStandIn, activity: dict[str, Any]) -> Any:
    response = await bot.post(activity, standin.token())
    assert response.status in (200, 201), await response.text()
    return response


def open_urls(node: Any) -> list[str]:
    if isinstance(node, dict):
        here = [node["url"]] if node.get("type") == "Action.OpenUrl" else []
        return here + [u for k, v in node.items() if k != "fallback" for u in open_urls(v)]
    if isinstance(node, list):
        return [u for item in node for u in open_urls(item)]
    return []


def cards_in(standin: TeamsStandIn, conversation: str) -> list[dict[str, Any]]:
    return [a["content"] for c in standin.delivered() if (c.conversation_id or "").startswith(conversation)
            or (isinstance(c.body, dict)
                and (c.body.get("channelData") or {}).get("channel", {}).get("id") == conversation)
            for a in ((c.body or {}).get("activity", c.body) or {}).get("attachments", [])
            if a.get("contentType") == "application/vnd.microsoft.card.adaptive"]


async def alerts(bot: BotHarness, **params: str) -> dict[str, Any]:
    async with bot.client.get("/api/v1/alerts", params=params, headers=AUTH) as r:
        assert r.status == 200
        return dict(await r.json())


async def make_security_channel(bot: BotHarness, standin: TeamsStandIn) -> None:
    # An admin makes this channel the security channel with the bot command, as a SOC would.
    before = len(standin.delivered())
    await send(bot, standin, channel_post(standin.service_url, sender_of(SOC), "alerts here", mention=True,
                                          activity_id="1730462409999"))
    await standin.wait_for(lambda s: len(s.delivered()) > before)  # the bot's confirmation


async def play_seed(bot: BotHarness, standin: TeamsStandIn) -> str:
    """The seed scenario's people at work; returns Bob's wrapped link (path and query)."""
    await bot.services.admin_verdicts.set("contoso-phish.com", Verdict.MALICIOUS, threat_types=("Phish",),
                                          reason="credential phishing kit")
    bot.services.verdicts.invalidate()
    await make_security_channel(bot, standin)
    sent_before = len(standin.delivered())

    # Alice posts the link in a group chat; the bot answers with a card; Bob's view has his own links.
    await send(bot, standin, group_chat_message(standin.service_url, sender_of(ALICE), f"please reset: {PHISH}"))
    await standin.wait_for(lambda s: len(s.delivered()) > sent_before)
    reply = next(c for c in standin.delivered() if c.conversation_id == GROUP_CHAT_ID)
    refresh = reply.body["attachments"][0]["content"]["refresh"]["action"]
    view = await send(bot, standin, card_action(standin.service_url, sender_of(BOB), refresh["verb"],
                                                refresh["data"]))
    link = urlsplit(open_urls((await view.json())["value"])[0])

    # Bob clicks: the warning page; then "Continue anyway".
    page = await bot.client.get(f"{link.path}?{link.query}", headers={"User-Agent": BROWSER_UA},
                                allow_redirects=False)
    assert page.status == 200
    token = _TOKEN_FIELD.search(await page.text())
    assert token is not None
    through = await bot.client.post("/v1/url/continue", data={"token": token.group(1)},
                                    headers={"User-Agent": BROWSER_UA, "Sec-Fetch-Site": "same-origin"},
                                    allow_redirects=False)
    assert through.status == 303 and through.headers["Location"] == PHISH
    return f"{link.path}?{link.query}"


async def test_seed_scenario_two_alerts_one_incident_card_and_email(
        seed_settings: Settings, standin: TeamsStandIn, mail: tuple[Mailbox, int]) -> None:
    """Malicious link in a chat → click → warning → Continue anyway: exactly the two seed alerts, one incident,
    an alert card in the security channel, an e-mail at the SMTP server; the card's buttons work."""
    async with running_bot(seed_settings) as bot:
        await play_seed(bot, standin)
        body = await eventually(lambda: _count(bot, 2))
        assert {a["title"] for a in body["value"]} == {"User clicked a malicious link in Teams chat",
                                                       "A user clicked through to a potentially malicious URL"}
        assert len({a["incidentId"] for a in body["value"]}) == 1
        assert {a["evidence"][1]["userAccount"]["userPrincipalName"] for a in body["value"]} == {
            "bob2@contoso.example"}
        message = next(e for e in body["value"][0]["evidence"] if e["@odata.type"].endswith("teamsMessageEvidence"))
        assert message["safelinksSnippet"] == f"please reset: {PHISH}"
        async with bot.client.get("/api/v1/incidents", headers=AUTH) as r:
            incidents = await r.json()
        assert incidents["@odata.count"] == 1
        assert incidents["value"][0]["displayName"] == "Malicious URL clicked in Teams by 1 user"

        # The security channel got one card for the incident (updated in place, not posted twice).
        await standin.wait_for(lambda s: any("related alert" in json.dumps(c) for c in cards_in(s, CHANNEL_ID)
                                             if "1 related alert" in json.dumps(c)))
        posts = [c for c in standin.delivered("POST") if json.dumps(c.body).count("alert.resolve")]
        assert len(posts) == 1
        card = cards_in(standin, CHANNEL_ID)[-1]
        text = json.dumps(card)
        assert "bob2@contoso.example" in text and "Alice Colleague" in text and "credential phishing kit" in text

        # The e-mail arrived.
        await eventually(_has_mail(mail[0], 2))
        assert {m["Subject"] for m in mail[0].messages} == {
            "[High] User clicked a malicious link in Teams chat",
            "[High] A user clicked through to a potentially malicious URL"}

        # The analyst blocks the URL from the card; someone outside the channel may not.
        alert_id = body["value"][0]["id"]
        outsider = card_action(standin.service_url, sender_of(BOB), "alert.block",
                               {"alert_id": int(alert_id)}, conversation_id=GROUP_CHAT_ID, trigger="manual")
        refused = await (await send(bot, standin, outsider)).json()
        assert refused["statusCode"] == 400 and "security channel" in json.dumps(refused)
        (posted,) = [r for r in await bot.rows("teams_cards") if r["card_key"].startswith("incident:")]
        analyst = card_action(standin.service_url, sender_of(SOC), "alert.block", {"alert_id": int(alert_id)},
                              conversation_id=posted["conversation_id"], reply_to=posted["activity_id"],
                              trigger="manual")
        answer = await (await send(bot, standin, analyst)).json()
        assert answer["statusCode"] == 200 and "blocked" in json.dumps(answer["value"])
        entries = await bot.rows("tabl_entries")
        assert [(e["value"], e["action"]) for e in entries] == [("login.contoso-phish.com/reset", "block")]
        assert (await alerts(bot, status="new"))["@odata.count"] == 2


async def _count(bot: BotHarness, n: int) -> dict[str, Any] | None:
    body = await alerts(bot)
    return body if body["@odata.count"] >= n else None


def _has_mail(box: Mailbox, n: int) -> Callable[[], Any]:
    async def check() -> bool:
        return len(box.messages) >= n

    return check


@pytest.fixture
async def clocked(seed_settings: Settings) -> AsyncIterator[tuple[BotHarness, FakeClock]]:
    clock = FakeClock()
    async with running_bot(seed_settings, clock=clock) as bot:
        yield bot, clock


async def test_verdict_change_alerts_clicks_of_the_last_48_hours_only(
        clocked: tuple[BotHarness, FakeClock], standin: TeamsStandIn) -> None:
    """A clean click, then the URL turns malicious: an alert for it; a click 49 hours before the change gets none."""
    bot, clock = clocked
    change_at = clock.now

    async def click(at_hours_before: float, who: dict[str, Any], message: str) -> None:
        clock.now = change_at - timedelta(hours=at_hours_before)
        ctx = LinkContext(workload=Workload.TEAMS, tenant="t", conversation=GROUP_CHAT_ID, message=message,
                          sender="alice1@contoso.example", recipient=who["userPrincipalName"],
                          recipient_id=who["aadObjectId"])
        link = urlsplit(bot.services.signer.wrap("https://files.contoso-share.com/invoice.zip", ctx))
        response = await bot.client.get(f"{link.path}?{link.query}", headers={"User-Agent": BROWSER_UA},
                                        allow_redirects=False)
        assert response.status == 302

    await click(49, ALICE, "m-old")
    await click(1, BOB, "m-new")
    clock.now = change_at
    change = await bot.services.admin_verdicts.set("contoso-share.com", Verdict.MALICIOUS, threat_types=("Malware",),
                                                   reason="payload confirmed", now=change_at.timestamp())
    assert change is not None
    bot.services.bus.publish(change)
    body = await eventually(lambda: _count(bot, 1))

    async def change_done() -> bool:  # the engine moves its cursor past a change once all its alerts are stored
        return any(r["name"] == CHANGES and r["position"] >= change.change_id for r in await bot.rows("alert_cursors"))

    await eventually(change_done)
    body = await alerts(bot)
    assert body["@odata.count"] == 1
    (alert,) = body["value"]
    assert alert["title"] == "A potentially malicious URL click was detected"
    assert alert["additionalData"]["click"]["AccountUpn"] == "bob2@contoso.example"
    assert alert["additionalData"]["verdict"]["reason"] == "payload confirmed"
