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
    channel_post,
    group_chat_message,
    running_bot,
    sender_of,
    user,
)

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
async def world(teams: TeamsStandIn, make_settings: Callable[..., Settings], tmp_path: Path) -> AsyncIterator[World]:
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
