"""Inbound authentication through the SDK's real token validation, against the Teams stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from bot.app import UNAUTHENTICATED_WARNING
from shared.config import Settings
from tests.teams_standin import (
    APP_ID,
    TENANT,
    BotHarness,
    TeamsStandIn,
    personal_message,
    running_bot,
    sender_of,
    user,
)

ALICE = user(1, name="Alice Example")


@pytest.fixture
def standin() -> Iterator[TeamsStandIn]:
    teams = TeamsStandIn(members={"a:1personal-chat": [ALICE]}).start()
    yield teams
    teams.stop()


@pytest.fixture
async def bot(standin: TeamsStandIn, make_settings: Callable[..., Settings]) -> AsyncIterator[BotHarness]:
    async with running_bot(make_settings(**standin.bot_settings())) as harness:
        yield harness


def _message(standin: TeamsStandIn) -> dict[str, Any]:
    return personal_message(standin.service_url, sender_of(ALICE), "look at https://example.com/offer")


@pytest.mark.usefixtures("both_backends")
async def test_valid_token_is_accepted_and_the_reply_carries_the_bots_own_token(
        bot: BotHarness, standin: TeamsStandIn) -> None:
    """A token signed by the channel's endorsed key passes, and the bot answers with a token from the login URL."""
    response = await bot.post(_message(standin), standin.token())
    assert response.status == 201
    await standin.wait_for(lambda s: len(s.delivered()) == 1)
    reply = standin.delivered()[0]
    assert reply.authorization is not None and reply.authorization.startswith("Bearer bot-token-")
    assert standin.tokens_issued[0]["client_id"] == APP_ID
    assert standin.tokens_issued[0]["scope"] == "https://api.botframework.com/.default"


@pytest.mark.parametrize(
    ("case", "token_args"),
    [
        ("missing", None),
        ("forged signature", {"key": "rogue"}),
        ("expired", {"expires_in": -600}),
        ("key not endorsed for msteams", {"key": "unendorsed"}),
        ("wrong audience", {"audience": "00000000-0000-0000-0000-000000000000"}),
        ("wrong issuer", {"issuer": "https://evil.example"}),
        ("service URL mismatch", {"service_url": "https://smba.trafficmanager.net/evil/"}),
    ],
)
async def test_bad_tokens_get_401_and_the_handler_never_runs(
        bot: BotHarness, standin: TeamsStandIn, case: str, token_args: dict[str, Any] | None) -> None:
    """Every rejected token answers 401 (never the SDK's 500) and nothing is stored or sent."""
    token = standin.token(**token_args) if token_args is not None else None
    response = await bot.post(_message(standin), token)
    assert response.status == 401, case
    assert await bot.rows("teams_conversations") == []
    assert await bot.rows("teams_messages") == []
    assert await bot.rows("outbox") == []


async def test_garbage_bearer_is_401(bot: BotHarness, standin: TeamsStandIn) -> None:
    """A header that is not a JWT at all is rejected as unauthorized."""
    response = await bot.post(_message(standin), "not-a-jwt")
    assert response.status == 401


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [("{not json", "application/json", 400), ('{"id": "x"}', "application/json", 400),
     ('{"type": "message"}', "text/plain", 415), ("[1, 2]", "application/json", 400)],
)
async def test_malformed_requests_are_4xx(bot: BotHarness, body: str, content_type: str, status: int) -> None:
    """A body that is not an activity is refused with a 4xx before any token check."""
    response = await bot.client.post("/api/messages", data=body, headers={"Content-Type": content_type})
    assert response.status == status


async def test_without_app_id_the_bot_runs_unauthenticated_and_says_so(
        standin: TeamsStandIn, make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture) -> None:
    """With no MicrosoftAppId, activities without a token are handled and the start logs a loud warning."""
    caplog.set_level("WARNING")
    # The channel endpoints still point at the stand-in, so a token sent anyway is checked on loopback.
    async with running_bot(make_settings(to_bot_from_channel_openid_metadata_url=standin.metadata_url)) as bot:
        assert UNAUTHENTICATED_WARNING in caplog.text
        response = await bot.post(_message(standin))
        assert response.status == 201
        await standin.wait_for(lambda s: len(s.delivered()) == 1)
        assert standin.delivered()[0].authorization is None
        forged = await bot.post(_message(standin), standin.token(key="rogue"))
        assert forged.status == 401


async def test_public_cloud_path_also_refuses_a_missing_token(
        standin: TeamsStandIn, make_settings: Callable[..., Settings]) -> None:
    """With an app id and no endpoint overrides (the SDK's built-in path), no Authorization header is a 401."""
    async with running_bot(make_settings(microsoft_app_id=APP_ID, microsoft_app_password="x",
                                         microsoft_app_tenant_id=TENANT)) as bot:
        response = await bot.post(_message(standin))
        assert response.status == 401
        assert await bot.rows("teams_conversations") == []
