"""The alert card in the security channel, attacked from outside: its text is data, its buttons are bound.

The whole application runs against the Teams stand-in: an outsider with a markdown link for a name
posts a phishing link, somebody clicks it, and the alert card that reaches the security channel is
inspected; then its buttons (and the reply card's viewer refresh) are pressed as an attacker would.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from shared.config import Settings
from shared.verdicts.model import Verdict
from tests.conftest import BROWSER_UA
from tests.teams_standin import (
    GROUP_CHAT_ID,
    PERSONAL_ID,
    TEAM_ID,
    BotHarness,
    Call,
    TeamsStandIn,
    card_action,
    channel_post,
    group_chat_message,
    running_bot,
    sender_of,
    user,
)
from tests.waiting import eventually

SOC = user(7, name="Sam Analyst")
MALLORY = user(6, name="Mallory [Click here to verify](https://evil.example/phish)")
CAROL = user(3, name="Carol Member")
OUTSIDER = user(9, name="Eve Outside", tenant="0badc0de-0000-4000-8000-000000000009")
MESSAGE = "[Reset your password](https://evil.example/reset) **now** https://evil.example/reset"
TOKEN = "api-token-for-card-tests-0123456789"
OUR_LINKS = ("https://teams.microsoft.com/l/message/", "http://127.0.0.1:3978/")
POLICIES = """
policies:
  - {name: Staff, EnableForInternalSenders: true}
rules:
  - {name: Staff, policy: Staff, priority: 0, recipient_domain_is: [contoso.example]}
"""


@dataclass
class World:
    bot: BotHarness
    teams: TeamsStandIn

    async def send(self, activity: dict[str, Any]) -> Any:
        response = await self.bot.post(activity, self.teams.token())
        assert response.status in (200, 201), await response.text()
        return response

    def alert_cards(self) -> list[Call]:
        return [c for c in self.teams.delivered() if "alert.resolve" in json.dumps(c.body)]


def card_of(call: Call) -> dict[str, Any]:
    activity = call.body.get("activity") or call.body  # a new thread carries its first message inside
    return dict(activity["attachments"][0]["content"])


def strings(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """Every (key, string) pair in a card, however deep."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from strings(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v, key)
    elif isinstance(node, str):
        yield key, node


def shown_text(card: dict[str, Any]) -> list[str]:
    return [v for k, v in strings(card) if k in ("text", "value", "title", "fallbackText")]


def links(card: dict[str, Any]) -> list[str]:
    return [v for k, v in strings(card) if k == "url"]


@pytest.fixture
def teams() -> Iterator[TeamsStandIn]:
    everyone = [SOC, MALLORY, CAROL]
    standin = TeamsStandIn(members={TEAM_ID: everyone, GROUP_CHAT_ID: everyone, PERSONAL_ID: [CAROL]}).start()
    yield standin
    standin.stop()


@pytest.fixture
async def world(both_backends: str, teams: TeamsStandIn, make_settings: Callable[..., Settings], tmp_path: Path
                ) -> AsyncIterator[World]:
    """The security channel is set; Mallory's message with a phishing link has been clicked: one alert card."""
    policy = tmp_path / "policies.yaml"
    policy.write_text(POLICIES, encoding="utf-8")
    settings = make_settings(admins=SOC["aadObjectId"], api_tokens=TOKEN, policy_file=policy,
                             **teams.bot_settings())
    async with running_bot(settings) as bot:
        w = World(bot, teams)
        await bot.services.admin_verdicts.set("evil.example", Verdict.MALICIOUS, threat_types=("Phish",),
                                              reason="[Verified safe](https://evil.example/ok) by the feed")
        bot.services.verdicts.invalidate()
        await w.send(channel_post(teams.service_url, sender_of(SOC), "alerts here", mention=True,
                                  activity_id="1730462409999"))
        await teams.wait_for(lambda t: len(t.delivered()) == 1)
        await w.send(group_chat_message(teams.service_url, sender_of(MALLORY), MESSAGE))
        await teams.wait_for(lambda t: len(t.delivered()) == 2)
        wrapped = next(u for u in links(card_of(teams.delivered()[1])) if "/v1/url" in u)
        link = urlsplit(wrapped)
        response = await bot.client.get(f"{link.path}?{link.query}", headers={"User-Agent": BROWSER_UA},
                                        allow_redirects=False)
        assert response.status == 200
        await teams.wait_for(lambda t: len(w.alert_cards()) == 1)
        yield w


async def test_outside_text_on_the_alert_card_is_never_a_link(world: World) -> None:
    """A sender's name, the message, the URL and a feed's reason show as text: no markdown link, no address."""
    card = card_of(world.alert_cards()[0])
    text = shown_text(card)
    joined = "\n".join(text)
    assert "Mallory" in joined and "Reset your password" in joined and "evil[.]example" in joined
    for value in text:
        assert "](" not in value and "**" not in value, value
        assert not re.search(r"(?i)https?://evil|evil\.example", value), value
    assert links(card) and all(u.startswith(OUR_LINKS) for u in links(card))


async def test_an_api_comment_shows_as_text_on_the_card(world: World) -> None:
    """A comment given through the REST API reaches the card's note as text, not as a link."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with world.bot.client.patch("/api/v1/alerts/1", headers=auth,
                                      json={"comment": "see [the fix](https://evil.example/fix)"}) as r:
        assert r.status == 200, await r.text()
    await world.teams.wait_for(lambda t: any("the fix" in json.dumps(c.body) for c in world.alert_cards()))
    card = card_of([c for c in world.alert_cards() if "the fix" in json.dumps(c.body)][-1])
    for value in shown_text(card):
        assert "](" not in value and "https://evil" not in value, value


# Card actions: bound to their card, authorised on the server, applied once.

async def press(world: World, verb: str, data: dict[str, Any], *, on: dict[str, Any] | None = None,
                who: dict[str, Any] = SOC) -> dict[str, Any]:
    """Press a button as ``who`` on the posted card ``on`` (a teams_cards row; the first alert card by default)."""
    card = on or (await alert_card_rows(world, 1))[0]
    invoke = card_action(world.teams.service_url, sender_of(who), verb, data, trigger="manual",
                         conversation_id=card["conversation_id"], reply_to=card["activity_id"])
    return dict(await (await world.send(invoke)).json())


async def alert_card_rows(world: World, count: int) -> list[dict[str, Any]]:
    """The posted alert cards (teams_cards rows), once there are at least ``count``."""
    async def posted() -> list[dict[str, Any]] | None:
        rows = [r for r in await world.bot.rows("teams_cards") if r["card_key"].startswith("incident:")]
        return sorted(rows, key=lambda r: r["card_key"]) if len(rows) >= count else None

    found: list[dict[str, Any]] = await eventually(posted)
    return found


async def second_incident(world: World, url: str) -> dict[str, Any]:
    """An e-mail gateway reports a click-through on ``url`` (another user, another domain): incident 2, card 2."""
    click = {"Timestamp": "2026-11-01T11:59:00Z", "Url": url, "ActionType": "ClickBlocked",
             "AccountUpn": "grady@contoso.example", "Workload": "Email", "NetworkMessageId": "nm-2",
             "ThreatTypes": "Phish", "IsClickedThrough": True, "ReportId": "gw-2"}
    async with world.bot.client.post("/api/v1/clicks", json=click,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as r:
        assert r.status == 202
    return (await alert_card_rows(world, 2))[1]


async def alert_row(world: World, alert_id: int) -> dict[str, Any]:
    return next(r for r in await world.bot.rows("alerts") if r["id"] == alert_id)


async def test_viewer_refresh_of_another_conversation_is_refused(world: World) -> None:
    """A refresh invoke naming another conversation's message gets a 400, never that message's links."""
    reply = card_of(world.teams.delivered()[1])
    data = reply["refresh"]["action"]["data"]
    invoke = card_action(world.teams.service_url, sender_of(OUTSIDER), reply["refresh"]["action"]["verb"], data,
                         conversation_id="19:outsiders-own-chat@thread.v2")
    body = await (await world.send(invoke)).json()
    assert body["statusCode"] == 400 and "/v1/url" not in json.dumps(body)


async def test_a_button_acts_only_on_the_alert_of_its_own_card(world: World) -> None:
    """An alert id carried to another card, or an invoke that names no card of ours, changes nothing."""
    first = (await alert_card_rows(world, 1))[0]
    second = await second_incident(world, "https://login.other-phish.com/p")
    assert (await alert_row(world, 2))["incident_id"] != (await alert_row(world, 1))["incident_id"]
    refused = await press(world, "alert.resolve", {"alert_id": 2, "incident_id": 2}, on=first)
    assert refused["statusCode"] == 400 and (await alert_row(world, 2))["status"] == "new"
    made_up = {**first, "activity_id": "1799999999999"}
    assert (await press(world, "alert.resolve", {"alert_id": 1}, on=made_up))["statusCode"] == 400
    elsewhere = {**second, "conversation_id": GROUP_CHAT_ID}
    assert (await press(world, "alert.resolve", {"alert_id": 2}, on=elsewhere))["statusCode"] == 400
    assert (await alert_row(world, 1))["status"] == "new"
    assert (await press(world, "alert.resolve", {"alert_id": 2}, on=second))["statusCode"] == 200
    assert (await alert_row(world, 2))["status"] == "resolved"


async def test_a_repeated_press_is_applied_once(world: World) -> None:
    """Resolve, classify and block pressed twice (or an invoke repeated) record and announce one change each."""
    second = await second_incident(world, "https://login.other-phish.com/p")
    for verb, data in (("alert.resolve", {}), ("alert.resolve", {}),
                       ("alert.classify", {"classification": "truePositive"}),
                       ("alert.classify", {"classification": "truePositive"}),
                       ("alert.block", {}), ("alert.block", {})):
        assert (await press(world, verb, {"alert_id": 2, **data}, on=second))["statusCode"] == 200
    actions = [(r["verb"], r["detail"]) for r in await world.bot.rows("alert_actions")]
    assert [verb for verb, _ in actions] == ["status", "classification", "comment"], actions
    assert len([r for r in await world.bot.rows("tabl_entries") if r["action"] == "block"]) == 1


async def test_assign_to_me_records_an_identity_not_a_display_name(world: World) -> None:
    """"Assign to me" stores who pressed as their UPN or Entra object id, whatever their display name says."""
    assert (await press(world, "alert.assign", {"alert_id": 1}))["statusCode"] == 200
    assigned = (await alert_row(world, 1))["assigned_to"]
    known = {r["aad_object_id"]: r["upn"] for r in await world.bot.rows("teams_users")}
    assert assigned == (known.get(SOC["aadObjectId"]) or SOC["aadObjectId"]) and assigned != SOC["name"]


async def test_allow_url_allows_exactly_the_alerts_url(world: World) -> None:
    """Allow from a card adds an entry for that URL alone: its '*' is a character, not a wildcard."""
    url = "https://login.other-phish.com/kit/*"
    second = await second_incident(world, url)
    assert (await press(world, "alert.allow", {"alert_id": 2}, on=second))["statusCode"] == 200
    tenant_list = world.bot.services.tenant_list
    await tenant_list.load()
    now = world.bot.services.clock()
    (entry,) = [r for r in await world.bot.rows("tabl_entries") if r["action"] == "allow"]
    assert entry["value"] == "login.other-phish.com/kit/%2a"
    for other in ("https://login.other-phish.com/kit/", "https://login.other-phish.com/kit/x",
                  "https://login.other-phish.com/", "https://login.other-phish.com/kit/*?a=1"):
        found = tenant_list.match(other, now)
        assert found is None or found.action.value != "allow", other
    allowed = tenant_list.match(url, now)
    assert allowed is not None and allowed.action.value == "allow"


@pytest.mark.parametrize(("url", "entry"), [
    ("https://login.contoso-phish.com/a/b?x=1", "login.contoso-phish.com/a/b?x=1"),
    ("https://login.contoso-phish.com/", "login.contoso-phish.com"),
    ("https://login.contoso-phish.com/kit/*", "login.contoso-phish.com/kit/%2A"),
    ("https://login.contoso-phish.com/" + "a" * 300, None),  # too long: refused, not widened to the host
    ("https://login.contoso-phish.com:8443/a", None),  # the list holds no ports
    ("https://user@login.contoso-phish.com/a", None),  # nor user names
])
def test_exact_allow_entry_table(url: str, entry: str | None) -> None:
    """The allow entry for an alert's URL covers that URL exactly, or there is none (with the reason)."""
    from shared.alerts.actions import exact_allow_entry
    from shared.alerts.errors import InvalidChange

    if entry is None:
        with pytest.raises(InvalidChange):
            exact_allow_entry(url)
    else:
        assert exact_allow_entry(url) == entry
