"""Commands by @mention (channels, group chats) or plain text (personal chat): help, check, alerts here, status."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest

from bot.notify import security_channel
from shared.config import Settings
from shared.verdicts.model import Verdict
from tests.teams_standin import (
    CHANNEL_ID,
    PERSONAL_ID,
    TEAM_ID,
    BotHarness,
    TeamsStandIn,
    channel_post,
    personal_message,
    running_bot,
    sender_of,
    user,
)

ADMIN, ALICE = user(7, name="Ada Admin"), user(1, name="Alice Example")


@pytest.fixture
def standin() -> Iterator[TeamsStandIn]:
    teams = TeamsStandIn(members={TEAM_ID: [ADMIN, ALICE], PERSONAL_ID: [ALICE, ADMIN]}).start()
    yield teams
    teams.stop()


@pytest.fixture
def bot_settings(both_backends: str, standin: TeamsStandIn, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(admins=ADMIN["aadObjectId"], **standin.bot_settings())


@pytest.fixture
async def bot(bot_settings: Settings) -> AsyncIterator[BotHarness]:
    async with running_bot(bot_settings) as harness:
        await harness.services.admin_verdicts.set("evil.example", Verdict.MALICIOUS, threat_types=("Phish",),
                                                  reason="reported by the SOC")
        harness.services.verdicts.invalidate()
        yield harness


async def answer(bot: BotHarness, standin: TeamsStandIn, activity: dict[str, Any]) -> str:
    """The text of the bot's single reply to ``activity``, card JSON included."""
    before = len(standin.delivered())
    response = await bot.post(activity, standin.token())
    assert response.status == 201
    await standin.wait_for(lambda s: len(s.delivered()) == before + 1)
    return json.dumps(standin.delivered()[-1].body)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("help", "What I can do"),
        ("check https://evil.example/login", "malicious"),
        ("check " + "https://eur01.safelinks.protection.outlook.com/?url=" + quote("https://evil.example/x", safe="")
         + "&data=1", "Unwrapped from"),
        ("check not a link", "not a web link"),
        ("status", "Only Safe Links admins"),
        ("alerts here", "Only Safe Links admins"),
        ("hello there", "found no link"),
    ],
)
async def test_personal_chat_commands(bot: BotHarness, standin: TeamsStandIn, text: str, expected: str) -> None:
    """Plain text in a personal chat is a command; admin commands refuse non-admins."""
    reply = await answer(bot, standin, personal_message(standin.service_url, sender_of(ALICE), text))
    assert expected in reply


async def test_check_explains_the_verdict(bot: BotHarness, standin: TeamsStandIn) -> None:
    """check gives the verdict, its source, threat types and the reason."""
    reply = await answer(bot, standin, channel_post(standin.service_url, sender_of(ALICE),
                                                    "check https://evil.example/login", mention=True))
    assert "Phish" in reply and "reported by the SOC" in reply and "admin" in reply


async def test_channel_text_without_mention_is_not_a_command(bot: BotHarness, standin: TeamsStandIn) -> None:
    """Without an @mention, 'help' in a channel is an ordinary message (no links: no answer)."""
    response = await bot.post(channel_post(standin.service_url, sender_of(ALICE), "help"), standin.token())
    assert response.status == 201
    assert await bot.rows("outbox") == []


async def test_alerts_here_sets_the_security_channel_and_it_survives_a_restart(
        bot_settings: Settings, standin: TeamsStandIn) -> None:
    """An admin's 'alerts here' in a channel makes it the security channel, stored across restarts and audited
    with the admin's object id and name."""
    async with running_bot(bot_settings) as bot:
        reply = await answer(bot, standin, channel_post(standin.service_url, sender_of(ADMIN), "alerts here",
                                                        mention=True))
        assert "Security alerts will be posted here" in reply
    async with running_bot(bot_settings) as bot:
        assert await security_channel(bot.services.db) == CHANNEL_ID
        assert [(a["via"], a["actor"], a["actor_name"], a["action"], a["target"])
                for a in await bot.rows("audit_log")] == [
            ("bot", ADMIN["aadObjectId"], ADMIN["name"], "bot.security_channel", CHANNEL_ID)]


async def test_status_for_admins(bot: BotHarness, standin: TeamsStandIn) -> None:
    """status shows identity, security channel, installs, recent messages and the Teams queue."""
    reply = await answer(bot, standin, personal_message(standin.service_url, sender_of(ADMIN), "status"))
    for fact in ("Safe Links status", "SingleTenant", "Security channel", "Teams messages waiting"):
        assert fact in reply
