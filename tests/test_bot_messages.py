"""Messages end to end: Teams activity in, evidence stored, reply card out at the stand-in, link served by the proxy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from bot.app import CARD_ACTIONS
from shared.config import Settings
from shared.signing import LinkContext
from shared.verdicts.model import Verdict
from tests.conftest import BROWSER_UA
from tests.teams_standin import (
    CHANNEL_ID,
    GROUP_CHAT_ID,
    PERSONAL_ID,
    TEAM_ID,
    BotHarness,
    TeamsStandIn,
    card_action,
    channel_post,
    edited,
    group_chat_message,
    installed,
    personal_message,
    running_bot,
    sender_of,
    soft_deleted,
    user,
)

ALICE, CAROL, DAN = user(1, name="Alice Example"), user(3, name="Carol Loud"), user(4, name="Dan Quiet")
EVE = user(9, name="Eve Outside", tenant="0badc0de-0000-4000-8000-000000000009")
POLICIES = """
groups:
  Loud: [carol3@contoso.example]
  Quiet: [dan4@contoso.example]
policies:
  - {name: Staff, EnableForInternalSenders: true, DoNotRewriteUrls: ["intranet.contoso.example/*"]}
  - {name: Loud, EnableForInternalSenders: true, reply_mode: always}
  - {name: Quiet, EnableForInternalSenders: true, reply_mode: silent}
rules:
  - {name: Loud, policy: Loud, priority: 0, SentToMemberOf: [Loud]}
  - {name: Quiet, policy: Quiet, priority: 1, SentToMemberOf: [Quiet]}
  - {name: Staff, policy: Staff, priority: 2, recipient_domain_is: [contoso.example]}
"""


@pytest.fixture
def standin() -> Iterator[TeamsStandIn]:
    everyone = [ALICE, CAROL, DAN, EVE]
    teams = TeamsStandIn(members={TEAM_ID: everyone, GROUP_CHAT_ID: everyone, PERSONAL_ID: [ALICE]}).start()
    yield teams
    teams.stop()


@pytest.fixture
async def bot(both_backends: str, standin: TeamsStandIn, make_settings: Callable[..., Settings], tmp_path: Path
              ) -> AsyncIterator[BotHarness]:
    policy = tmp_path / "policies.yaml"
    policy.write_text(POLICIES, encoding="utf-8")
    async with running_bot(make_settings(policy_file=policy, **standin.bot_settings())) as harness:
        await harness.services.admin_verdicts.set("evil.example", Verdict.MALICIOUS, threat_types=("Phish",))
        harness.services.verdicts.invalidate()
        yield harness


async def send(bot: BotHarness, standin: TeamsStandIn, activity: dict[str, Any]) -> Any:
    response = await bot.post(activity, standin.token())
    assert response.status in (200, 201), await response.text()
    return response


async def rows_when(bot: BotHarness, table: str, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The table's rows once it holds ``count`` of them (deliveries finish in the background)."""
    for _ in range(int(timeout / 0.02)):
        rows = await bot.rows(table)
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.02)
    raise AssertionError(f"{table} never held {count} rows")


def card_of(call: Any) -> dict[str, Any]:
    return call.body["attachments"][0]["content"]


def open_urls(card: dict[str, Any]) -> list[str]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "Action.OpenUrl":
                found.append(node["url"])
            for key, value in node.items():
                if key != "fallback":
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return found


def originals(bot: BotHarness, card: dict[str, Any]) -> list[str]:
    return [bot.services.signer.decode(u).url for u in open_urls(card)]


async def test_channel_post_with_a_malicious_link_gets_a_threaded_card_and_evidence(
        bot: BotHarness, standin: TeamsStandIn) -> None:
    """A channel post is answered in its thread: host, badge, wrapped link; its evidence has the Teams fields."""
    await send(bot, standin, channel_post(standin.service_url, sender_of(ALICE),
                                          "new portal: https://login.evil.example/reset", mention=True))
    await standin.wait_for(lambda s: len(s.delivered()) == 1)
    reply = standin.delivered()[0]
    assert reply.conversation_id == f"{CHANNEL_ID};messageid=1730462400001"
    assert reply.activity_id == "1730462400001"
    card = card_of(reply)
    assert card["version"] == "1.5" and "fallbackText" in card
    assert "Malicious" in json.dumps(card) and "login.evil.example" in json.dumps(card)
    assert sorted(card["refresh"]["userIds"]) == sorted(m["id"] for m in (ALICE, CAROL, DAN, EVE))
    decoded = bot.services.signer.decode(open_urls(card)[0])
    assert decoded.url == "https://login.evil.example/reset"
    ctx = decoded.context
    assert ctx is not None
    assert (ctx.team, ctx.channel, ctx.conversation, ctx.message) == (TEAM_ID, CHANNEL_ID, CHANNEL_ID, "1730462400001")
    assert ctx.sender == "alice1@contoso.example" and ctx.recipient is None
    (row,) = await bot.rows("teams_messages")
    assert (row["thread_type"], row["thread_sub_type"], row["team_id"], row["channel_id"]) == (
        "Topic", "channel", TEAM_ID, CHANNEL_ID)
    assert row["parent_message_id"] == "1730462400001" and row["sender_upn"] == "alice1@contoso.example"
    assert json.loads(row["urls"]) == ["https://login.evil.example/reset"] and not row["is_external"]
    assert row["snippet"] == "new portal: https://login.evil.example/reset"


@pytest.mark.parametrize(
    ("sender", "text", "replies"),
    [
        (ALICE, "see https://docs.contoso.example/guide", 0),      # risky-only, clean: evidence only
        (ALICE, "see https://evil.example/x", 1),                  # risky-only, malicious: reply
        (CAROL, "see https://docs.contoso.example/guide", 1),      # always
        (DAN, "see https://evil.example/x", 0),                    # silent
        (ALICE, "see https://intranet.contoso.example/a", 0),      # DoNotRewriteUrls: nothing to wrap
    ],
)
async def test_reply_modes_follow_the_senders_policy(
        bot: BotHarness, standin: TeamsStandIn, sender: dict[str, Any], text: str, replies: int) -> None:
    """always / risky-only (the default in group chats) / silent, and exempt links, decide whether a card is posted."""
    await send(bot, standin, group_chat_message(standin.service_url, sender_of(sender), text))
    assert len(await bot.rows("outbox")) == replies
    await standin.wait_for(lambda s: len(s.delivered()) == replies)
    assert len(await bot.rows("teams_messages")) == 1


async def test_html_anchors_and_rewriters_are_unwrapped_and_our_links_not_rewrapped(
        bot: BotHarness, standin: TeamsStandIn) -> None:
    """Links in <a href>, Defender Safe Links and Proofpoint wrappers are unwrapped; our own links are left out."""
    ours = bot.services.signer.wrap("https://already.example/", LinkContext())
    defender = ("https://nam02.safelinks.protection.outlook.com/?url=" + quote("https://evil.example/a", safe="")
                + "&data=05%7C01&reserved=0")
    proofpoint = "https://urldefense.com/v3/__https://pp.example/path__;!!abc!def$"
    html = (f'<p>Hi <a href="{defender}">statement</a>, <a href="{proofpoint}">this</a> and '
            f'<a href="{ours}">ours</a> and <a href="https://plain.example/x">plain</a></p>')
    await send(bot, standin, group_chat_message(standin.service_url, sender_of(CAROL), html, text_format="xml"))
    await standin.wait_for(lambda s: len(s.delivered()) == 1)
    assert originals(bot, card_of(standin.delivered()[0])) == [
        "https://evil.example/a", "https://pp.example/path", "https://plain.example/x"]


async def test_personal_chat_adaptive_card_links_are_wrapped_for_the_recipient(
        bot: BotHarness, standin: TeamsStandIn) -> None:
    """In a personal chat every link (card actions and card text too) is wrapped for that user."""
    forwarded = {"contentType": "application/vnd.microsoft.card.adaptive", "content": {
        "type": "AdaptiveCard", "version": "1.4",
        "body": [{"type": "TextBlock", "text": "Details at [the wiki](https://wiki.example/page)"}],
        "actions": [{"type": "Action.OpenUrl", "title": "Pay", "url": "https://pay.example/now"}]}}
    await send(bot, standin, personal_message(standin.service_url, sender_of(ALICE), "fyi", attachments=[forwarded]))
    await standin.wait_for(lambda s: len(s.delivered()) == 1)
    card = card_of(standin.delivered()[0])
    assert "refresh" not in card
    assert originals(bot, card) == ["https://wiki.example/page", "https://pay.example/now"]
    ctx = bot.services.signer.decode(open_urls(card)[0]).context
    assert ctx is not None and (ctx.recipient, ctx.recipient_id) == ("alice1@contoso.example", "aad-0001")


async def test_messages_from_bots_are_skipped(bot: BotHarness, standin: TeamsStandIn) -> None:
    """Another bot's message (28: id) is neither stored nor answered."""
    other = {"id": "28:some-other-bot", "name": "Workflows"}
    await send(bot, standin, group_chat_message(standin.service_url, other, "https://evil.example/x"))
    assert await bot.rows("teams_messages") == [] and await bot.rows("outbox") == []


async def test_external_sender_is_marked_external(bot: BotHarness, standin: TeamsStandIn) -> None:
    """A sender whose home tenant differs from ours is kept with isExternal true."""
    await send(bot, standin, group_chat_message(standin.service_url, sender_of(EVE), "https://evil.example/x"))
    (row,) = await bot.rows("teams_messages")
    assert row["is_external"] and row["sender_tenant_id"] == EVE["tenantId"]


async def test_edit_updates_evidence_and_the_reply_in_place_and_delete_marks_it(
        bot: BotHarness, standin: TeamsStandIn) -> None:
    """An edit rewrites the evidence and PUTs the same reply; a soft delete marks the evidence and blanks the card."""
    first = personal_message(standin.service_url, sender_of(ALICE), "https://one.example/a")
    await send(bot, standin, first)
    await standin.wait_for(lambda s: len(s.delivered("POST")) == 1)
    (posted,) = await rows_when(bot, "teams_cards", 1)
    posted_id = posted["activity_id"]
    await send(bot, standin, edited(first, "now https://two.example/b"))
    await standin.wait_for(lambda s: len(s.delivered("PUT")) == 1)
    update = standin.delivered("PUT")[0]
    assert update.activity_id == posted_id and originals(bot, card_of(update)) == ["https://two.example/b"]
    (row,) = await bot.rows("teams_messages")
    assert json.loads(row["urls"]) == ["https://two.example/b"] and row["modified_at"] is not None
    await send(bot, standin, soft_deleted(first))
    await standin.wait_for(lambda s: len(s.delivered("PUT")) == 2)
    assert open_urls(card_of(standin.delivered("PUT")[1])) == []
    (row,) = await bot.rows("teams_messages")
    assert row["deleted_at"] is not None
    assert len(standin.delivered("POST")) == 1


async def test_install_greets_once_and_uninstall_drops_the_reference(bot: BotHarness, standin: TeamsStandIn) -> None:
    """installationUpdate add stores the reference and greets once; remove drops the reference."""
    await send(bot, standin, installed(standin.service_url, sender_of(ALICE)))
    await send(bot, standin, installed(standin.service_url, sender_of(ALICE)))
    await standin.wait_for(lambda s: len(s.delivered()) == 1)
    (conv,) = await bot.rows("teams_conversations")
    assert conv["conversation_id"] == TEAM_ID and conv["team_name"] == "Contoso Security" and conv["installed"]
    assert "Safe Links is here" in json.dumps(card_of(standin.delivered()[0]))
    await send(bot, standin, installed(standin.service_url, sender_of(ALICE), action="remove"))
    (conv,) = await bot.rows("teams_conversations")
    assert not conv["installed"] and conv["reference"] == "{}"


async def test_large_group_gets_shared_links_without_user_specific_views(
        bot: BotHarness, standin: TeamsStandIn) -> None:
    """Above 60 members the card has no refresh, and its links carry no recipient."""
    standin.members[GROUP_CHAT_ID] = [user(n) for n in range(100, 161)] + [CAROL]
    await send(bot, standin, group_chat_message(standin.service_url, sender_of(CAROL), "https://evil.example/q"))
    await standin.wait_for(lambda s: len(s.delivered()) == 1)
    card = card_of(standin.delivered()[0])
    assert "refresh" not in card
    ctx = bot.services.signer.decode(open_urls(card)[0]).context
    assert ctx is not None and ctx.recipient is None and ctx.recipient_id is None


async def test_viewer_refresh_answers_200_with_links_wrapped_for_that_viewer(
        bot: BotHarness, standin: TeamsStandIn) -> None:
    """adaptiveCard/action (user-specific view) answers HTTP 200 with a card; the 4.17 double-serialising is avoided."""
    await send(bot, standin, group_chat_message(standin.service_url, sender_of(CAROL), "https://evil.example/v"))
    await standin.wait_for(lambda s: len(s.delivered()) == 1)
    refresh = card_of(standin.delivered()[0])["refresh"]["action"]
    invoke = card_action(standin.service_url, sender_of(DAN), refresh["verb"], refresh["data"])
    response = await send(bot, standin, invoke)
    assert response.status == 200
    body = await response.json()
    assert body["statusCode"] == 200 and body["type"] == "application/vnd.microsoft.card.adaptive"
    ctx = bot.services.signer.decode(open_urls(body["value"])[0]).context
    assert ctx is not None and (ctx.recipient, ctx.recipient_id) == ("dan4@contoso.example", "aad-0004")


async def test_registered_verbs_answer_and_unknown_verbs_are_400(bot: BotHarness, standin: TeamsStandIn) -> None:
    """A verb registered by another part (the alert engine) gets the CardAction; an unknown verb is a 400 body."""
    seen: list[Any] = []

    async def resolve(action: Any) -> dict[str, Any]:
        seen.append(action)
        return {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "Resolved"}]}

    bot.app[CARD_ACTIONS].register_verb("test.resolve", resolve)
    response = await send(bot, standin, card_action(standin.service_url, sender_of(ALICE), "test.resolve",
                                                    {"alert": "a1"}, trigger="manual"))
    assert (await response.json())["value"]["body"][0]["text"] == "Resolved"
    assert (seen[0].verb, seen[0].data, seen[0].user_aad_id, seen[0].activity_id) == (
        "test.resolve", {"alert": "a1"}, "aad-0001", "1700000000001")
    unknown = await send(bot, standin, card_action(standin.service_url, sender_of(ALICE), "nope", {}))
    assert (await unknown.json())["statusCode"] == 400


async def test_wrapped_link_from_the_card_is_served_by_the_proxy(bot: BotHarness, standin: TeamsStandIn) -> None:
    """The same application serves the card's wrapped link, and the click names the Teams message."""
    await send(bot, standin, personal_message(standin.service_url, sender_of(ALICE), "https://fine.example/doc"))
    await standin.wait_for(lambda s: len(s.delivered()) == 1)
    link = urlsplit(open_urls(card_of(standin.delivered()[0]))[0])
    response = await bot.client.get(f"{link.path}?{link.query}", headers={"User-Agent": BROWSER_UA},
                                    allow_redirects=False)
    assert response.status in (200, 302)
    (click,) = await bot.rows("clicks")
    assert (click["message_id"], click["conversation_id"], click["account_upn"]) == (
        "1730462400201", PERSONAL_ID, "alice1@contoso.example")
