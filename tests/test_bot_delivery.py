"""The Teams sender: retries with Retry-After or backoff, permanent failures, restarts, rate limits, post_card."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from bot.app import TEAMS_OUTBOX
from bot.notify import SECURITY, enqueue, post_card
from shared.config import Settings
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
from tests.waiting import eventually

ADMIN = user(7, name="Ada Admin")


@pytest.fixture
def standin() -> Iterator[TeamsStandIn]:
    teams = TeamsStandIn(members={TEAM_ID: [ADMIN], PERSONAL_ID: [ADMIN]}).start()
    yield teams
    teams.stop()


@pytest.fixture
def bot_settings(both_backends: str, standin: TeamsStandIn, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(admins=ADMIN["aadObjectId"], **standin.bot_settings())


@pytest.fixture
async def bot(bot_settings: Settings) -> AsyncIterator[BotHarness]:
    async with running_bot(bot_settings) as harness:
        yield harness


async def ask(bot: BotHarness, standin: TeamsStandIn, text: str = "help") -> None:
    response = await bot.post(personal_message(standin.service_url, sender_of(ADMIN), text), standin.token())
    assert response.status == 201


async def outbox_item(bot: BotHarness, index: int = 0) -> dict[str, Any]:
    return (await bot.rows("outbox"))[index]


async def settled_item(bot: BotHarness, index: int = 0, timeout: float = 5.0) -> dict[str, Any]:
    """The outbox row once its delivery is recorded (Teams answers before the row is updated)."""
    deadline = asyncio.get_running_loop().time() + timeout
    item = await outbox_item(bot, index)
    while item["status"] == "pending" and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
        item = await outbox_item(bot, index)
    return item


@pytest.mark.parametrize(("status", "retry_after"), [(429, "1"), (412, None), (502, None), (504, None)])
async def test_throttling_and_gateway_errors_are_retried(
        bot: BotHarness, standin: TeamsStandIn, status: int, retry_after: str | None) -> None:
    """429 (after Retry-After), 412, 502 and 504 are retried until the message goes out."""
    standin.fail_next(status, retry_after=retry_after)
    await ask(bot, standin)
    await standin.wait_for(lambda s: len(s.delivered()) == 1, timeout=6)
    attempts = standin.writes()
    assert [c.status for c in attempts] == [status, 201]
    if retry_after:
        assert attempts[1].at - attempts[0].at >= 0.9
    assert (await settled_item(bot))["status"] == "done"


async def test_forbidden_is_a_permanent_failure_kept_for_people_to_see(bot: BotHarness, standin: TeamsStandIn) -> None:
    """403 (the bot was removed) fails for good: the item stays, marked failed with the reason."""
    standin.fail_next(403)
    await ask(bot, standin)
    for _ in range(200):
        item = await outbox_item(bot)
        if item["status"] != "pending":
            break
        await asyncio.sleep(0.02)
    assert item["status"] == "failed" and "403" in item["last_error"]
    assert len(standin.writes()) == 1


async def test_unsent_messages_wait_in_the_store_and_go_out_after_a_restart(
        bot_settings: Settings, standin: TeamsStandIn) -> None:
    """A message the connector keeps refusing is still there after a restart, and is then delivered."""
    standin.fail_next(503, count=1000)
    async with running_bot(bot_settings) as bot:
        await ask(bot, standin)
        await standin.wait_for(lambda s: len(s.writes()) >= 1)
    standin.fail_next(503, count=0)
    standin._failures.clear()
    async with running_bot(bot_settings) as bot:
        # The retry waits out its backoff (a few seconds at most after two or three failures).
        await standin.wait_for(lambda s: len(s.delivered()) == 1, timeout=30)
        assert (await settled_item(bot))["status"] == "done"


async def test_one_conversation_gets_at_most_seven_messages_a_second(bot: BotHarness, standin: TeamsStandIn) -> None:
    """Fourteen queued messages to one chat take at least a second: Teams' 7/s per conversation."""
    await ask(bot, standin)  # stores the conversation reference
    await standin.wait_for(lambda s: len(s.delivered()) == 1)
    async with bot.services.db.transaction() as tx:
        for n in range(14):
            await enqueue(bot.app[TEAMS_OUTBOX], target=PERSONAL_ID, text=f"message {n}", tx=tx)
    bot.app[TEAMS_OUTBOX].wake()
    await standin.wait_for(lambda s: len(s.delivered()) == 15, timeout=8)
    burst = standin.delivered()[1:]
    assert burst[-1].at - burst[0].at >= 0.9
    assert [c.body["text"] for c in burst] == [f"message {n}" for n in range(14)]


async def test_post_card_starts_a_thread_in_the_security_channel_and_updates_it_by_key(
        bot: BotHarness, standin: TeamsStandIn) -> None:
    """post_card opens a new channel thread (bot_app_id given); the same card_key again edits that message."""
    outbox = bot.app[TEAMS_OUTBOX]
    await post_card(outbox, SECURITY, {"type": "AdaptiveCard", "version": "1.5", "body": []}, card_key="alert:1")

    async def tried() -> dict[str, Any] | None:  # the attempt is over once its outcome is recorded
        item = await outbox_item(bot)
        return item if item["last_error"] else None

    item = await eventually(tried)
    assert standin.delivered() == []
    assert item["status"] == "pending" and "alerts here" in (item["last_error"] or "")
    response = await bot.post(channel_post(standin.service_url, sender_of(ADMIN), "alerts here", mention=True),
                              standin.token())
    assert response.status == 201
    await standin.wait_for(lambda s: len(s.delivered()) == 1)
    await bot.services.db.execute("UPDATE outbox SET next_attempt_at = 0 WHERE status = 'pending'")
    outbox.wake()
    await standin.wait_for(lambda s: any(c.path == "/v3/conversations" for c in s.delivered()))
    created = next(c for c in standin.delivered() if c.path == "/v3/conversations")
    assert created.body["channelData"]["channel"]["id"] == CHANNEL_ID
    assert created.body["activity"]["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    for _ in range(100):
        if await bot.rows("teams_cards"):
            break
        await asyncio.sleep(0.02)
    updated_card = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "Resolved"}]}
    await post_card(outbox, SECURITY, updated_card, card_key="alert:1")
    await standin.wait_for(lambda s: len(s.delivered("PUT")) == 1)
    put = standin.delivered("PUT")[0]
    assert put.conversation_id.startswith(CHANNEL_ID + ";messageid=")
    assert put.body["attachments"][0]["content"]["body"][0]["text"] == "Resolved"
