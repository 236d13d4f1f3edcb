"""Quarantine end to end over HTTP: Teams stand-in in, Graph stand-in out, the record, API, CLI and page."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings
from shared.graph import MessageRef
from shared.verdicts.model import Verdict
from tests.conftest import FakeClock, run_cli
from tests.graph_standin import GraphStandIn, graph_standin
from tests.seed_cast import ALICE, BOB, PHISH, POLICIES, SOC, cast_standin
from tests.teams_standin import (
    CHANNEL_ID,
    GROUP_CHAT_ID,
    BotHarness,
    TeamsStandIn,
    channel_post,
    group_chat_message,
    running_bot,
    sender_of,
)
from tests.waiting import delivered, eventually

TOKEN = "quarantine-api-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
AAD_GROUP = "0b6c1f2e-8d4a-4e3b-9c7d-5a6b7c8d9e0f"
CHAT_PATH = f"/chats/{GROUP_CHAT_ID}/messages/1730462400101"


@pytest.fixture
def teams() -> Iterator[TeamsStandIn]:
    yield from cast_standin()


@pytest.fixture
async def graph() -> AsyncIterator[GraphStandIn]:
    async with graph_standin() as standin:
        yield standin


@pytest.fixture
def q_settings(make_settings: Callable[..., Settings], teams: TeamsStandIn, graph: GraphStandIn,
               tmp_path: Path) -> Callable[..., Settings]:
    policy = tmp_path / "policies.yaml"
    policy.write_text(POLICIES, encoding="utf-8")

    def make(**overrides: Any) -> Settings:
        values = {"policy_file": policy, "admins": SOC["aadObjectId"], "api_tokens": TOKEN,
                  "teams_quarantine": "malicious", **teams.bot_settings(), **graph.settings()}
        return make_settings(**{**values, **overrides})

    return make


async def send(bot: BotHarness, teams: TeamsStandIn, activity: dict[str, Any]) -> Any:
    response = await bot.post(activity, teams.token())
    assert response.status in (200, 201), await response.text()
    return response


async def records(bot: BotHarness, **params: str) -> list[dict[str, Any]]:
    async with bot.client.get("/api/v1/quarantine", params=params, headers=AUTH) as r:
        assert r.status == 200, await r.text()
        return list((await r.json())["value"])


def in_state(bot: BotHarness, state: str, n: int = 1) -> Callable[[], Any]:
    async def check() -> list[dict[str, Any]] | None:
        found = await records(bot, state=state)
        return found if len(found) >= n else None

    return check


async def mark(bot: BotHarness, host: str, verdict: Verdict, *, now: float | None = None) -> None:
    change = await bot.services.admin_verdicts.set(host, verdict, threat_types=("Phish",), reason="phishing kit",
                                                   now=now)
    bot.services.verdicts.invalidate()
    if change is not None:
        bot.services.bus.publish(change)


@pytest.mark.parametrize(("ref", "path"), [
    (MessageRef("m1", chat_id="19:abc@thread.v2"), "/chats/19:abc@thread.v2/messages/m1"),
    (MessageRef("m1", team_id="g", channel_id="19:c@thread.tacv2"), "/teams/g/channels/19:c@thread.tacv2/messages/m1"),
    (MessageRef("m1", team_id="g", channel_id="c", root_id="m1"), "/teams/g/channels/c/messages/m1"),
    (MessageRef("m2", team_id="g", channel_id="c", root_id="m1"), "/teams/g/channels/c/messages/m1/replies/m2"),
    (MessageRef("a/b?c#d", chat_id="x/../y"), "/chats/x%2F..%2Fy/messages/a%2Fb%3Fc%23d"),
])
def test_graph_message_paths(ref: MessageRef, path: str) -> None:
    """Chats, channel posts and replies each get Graph's path; ids never add path segments or a query."""
    assert ref.path() == path


async def test_malicious_on_arrival_is_hidden_then_released(
        q_settings: Callable[..., Settings], teams: TeamsStandIn, graph: GraphStandIn, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A malicious link hides its message through Graph (BlockAccess, sender may dispute, tip links to the page);
    the API releases it (dlpAction None); the reply card still went out; list shows who did what."""
    graph.add_message(CHAT_PATH)
    settings = q_settings()
    async with running_bot(settings) as bot:
        await mark(bot, "contoso-phish.com", Verdict.MALICIOUS)
        await send(bot, teams, group_chat_message(teams.service_url, sender_of(ALICE), f"reset here: {PHISH}"))
        (hidden,) = await eventually(in_state(bot, "hidden"))
        (call,) = graph.patches()
        assert call.path == CHAT_PATH and call.status == 200
        violation = call.body["policyViolation"]
        assert violation["dlpAction"] == "BlockAccess"
        assert violation["verdictDetails"] == "AllowFalsePositiveOverride"
        assert PHISH in violation["policyTip"]["generalText"]
        page_url = violation["policyTip"]["complianceUrl"]
        assert page_url.startswith(settings.public_url + "/v1/quarantine/")
        assert hidden["sender"] and hidden["links"][0]["url"] == PHISH and hidden["cause"] == "arrival"
        await teams.wait_for(lambda s: any(c.conversation_id == GROUP_CHAT_ID for c in s.delivered()))

        page = await bot.client.get(page_url.removeprefix(settings.public_url))
        assert page.status == 200 and page.headers["Cache-Control"] == "no-store"
        assert "login.contoso-phish.com" in await page.text()
        assert (await bot.client.get("/v1/quarantine/" + "x" * 24)).status == 404

        released = await bot.client.post(f"/api/v1/quarantine/{hidden['id']}/release", json={"by": "Sam Analyst"},
                                         headers=AUTH)
        assert released.status == 202, await released.text()
        (done,) = await eventually(in_state(bot, "released"))
        assert done["releasedBy"] == "Sam Analyst" and done["releasedAt"]
        assert graph.patches()[-1].body == {"policyViolation": {"dlpAction": "None", "verdictDetails": "None"}}
        assert graph.messages[CHAT_PATH]["policyViolation"]["dlpAction"] == "None"
        again = await bot.client.post(f"/api/v1/quarantine/{hidden['id']}/release", headers=AUTH)
        assert again.status == 200 and (await again.json())["state"] == "released"
        assert (await bot.client.post("/api/v1/quarantine/999/release", headers=AUTH)).status == 404
        assert (await bot.client.get("/api/v1/quarantine")).status == 401
        audit = await bot.rows("audit_log")
        assert [(a["via"], a["actor"], a["actor_name"], a["action"], a["target"]) for a in audit] == [
            ("api", "api", "Sam Analyst", "quarantine.release", f"quarantine {hidden['id']}")]

    config = tmp_path / "cli.yaml"
    config.write_text(f"data_dir: {settings.data_dir}\n", encoding="utf-8")
    code, out, _ = await asyncio.to_thread(run_cli, capsys, "--config", str(config), "quarantine", "list", "--json")
    assert code == 0
    (listed,) = json.loads(out)
    assert (listed["state"], listed["releasedBy"], listed["conversation"]) == ("released", "Sam Analyst",
                                                                                GROUP_CHAT_ID)
    code, out, _ = await asyncio.to_thread(run_cli, capsys, "--config", str(config), "quarantine", "list")
    assert code == 0 and "released" in out and "Sam Analyst" in out
    code, out, _ = await asyncio.to_thread(run_cli, capsys, "--config", str(config), "quarantine", "release",
                                           str(listed["id"]))
    assert code == 0 and f"unchanged: message {listed['id']} is already released" in out


@pytest.mark.parametrize(("mode", "verdict", "hidden"), [
    ("off", Verdict.MALICIOUS, False),
    ("malicious", Verdict.SUSPICIOUS, False),
    ("malicious", Verdict.MALICIOUS, True),
    ("risky", Verdict.SUSPICIOUS, True),
])
async def test_mode_decides_which_verdicts_hide(q_settings: Callable[..., Settings], teams: TeamsStandIn,
                                                graph: GraphStandIn, mode: str, verdict: Verdict,
                                                hidden: bool) -> None:
    """off hides nothing; malicious hides malicious only; risky adds suspicious."""
    graph.add_message(CHAT_PATH)
    async with running_bot(q_settings(teams_quarantine=mode)) as bot:
        await mark(bot, "contoso-phish.com", verdict)
        await send(bot, teams, group_chat_message(teams.service_url, sender_of(ALICE), f"see {PHISH}"))
        await teams.wait_for(lambda s: any(c.conversation_id == GROUP_CHAT_ID for c in s.delivered()))
        if hidden:
            await eventually(in_state(bot, "hidden"))
        else:
            await delivered(bot.services.db)
            assert await records(bot) == [] and graph.patches() == []


async def test_verdict_change_hides_messages_of_the_last_48_hours_only(
        q_settings: Callable[..., Settings], teams: TeamsStandIn, graph: GraphStandIn) -> None:
    """A link turns malicious: its message delivered within 48 hours is hidden, one delivered before is not."""
    graph.add_message(CHAT_PATH)
    old_path = f"/chats/{GROUP_CHAT_ID}/messages/1730462400999"
    graph.add_message(old_path)
    clock = FakeClock(datetime(2026, 11, 1, 13, 0, tzinfo=UTC))
    async with running_bot(q_settings(), clock=clock) as bot:
        await send(bot, teams, group_chat_message(teams.service_url, sender_of(ALICE), f"new {PHISH}"))
        old = group_chat_message(teams.service_url, sender_of(ALICE), f"old {PHISH}", activity_id="1730462400999")
        old["timestamp"] = "2026-10-30T12:59:00Z"
        await send(bot, teams, old)
        await delivered(bot.services.db)
        assert graph.patches() == []
        await mark(bot, "contoso-phish.com", Verdict.MALICIOUS, now=clock.now.timestamp())
        (hidden,) = await eventually(in_state(bot, "hidden"))
        await delivered(bot.services.db)
        assert [c.path for c in graph.patches()] == [CHAT_PATH]
        assert hidden["cause"] == "verdict-change" and "phishing kit" in hidden["reason"]


async def test_other_organisation_refused_keeps_the_warning(q_settings: Callable[..., Settings],
                                                            teams: TeamsStandIn, graph: GraphStandIn) -> None:
    """Graph answers 403 for a message from another organisation: the record says why, the reply card stays."""
    graph.add_message(CHAT_PATH, external=True)
    async with running_bot(q_settings()) as bot:
        await mark(bot, "contoso-phish.com", Verdict.MALICIOUS)
        await send(bot, teams, group_chat_message(teams.service_url, sender_of(ALICE), f"reset here: {PHISH}"))
        (failed,) = await eventually(in_state(bot, "failed"))
        assert "another organisation" in failed["why"] and failed["hiddenAt"] is None
        assert [c.status for c in graph.patches()] == [403]
        await teams.wait_for(lambda s: any(c.conversation_id == GROUP_CHAT_ID for c in s.delivered()))
        refused = await bot.client.post(f"/api/v1/quarantine/{failed['id']}/release", headers=AUTH)
        assert refused.status == 400 and "never hidden" in await refused.text()


async def test_throttled_graph_is_retried_after_its_retry_after(q_settings: Callable[..., Settings],
                                                                teams: TeamsStandIn, graph: GraphStandIn) -> None:
    """429 with Retry-After: 1 and a 503: the same PATCH is sent again, no sooner than Graph asked, then succeeds."""
    graph.add_message(CHAT_PATH)
    graph.fail_next(429, retry_after="1")
    graph.fail_next(503)
    async with running_bot(q_settings()) as bot:
        await mark(bot, "contoso-phish.com", Verdict.MALICIOUS)
        await send(bot, teams, group_chat_message(teams.service_url, sender_of(ALICE), f"reset here: {PHISH}"))
        await eventually(in_state(bot, "hidden"), timeout=15)
        calls = graph.patches()
        assert [c.status for c in calls] == [429, 503, 200]
        assert calls[1].at - calls[0].at >= 0.9
        assert len(graph.token_requests) == 1  # the token is kept between calls


async def test_channel_posts_and_replies_use_the_team_group_id(q_settings: Callable[..., Settings],
                                                               teams: TeamsStandIn, graph: GraphStandIn) -> None:
    """A channel post and a reply are hidden under /teams/{aadGroupId}/channels/…; a team whose group id was
    never seen cannot be addressed, and the record says so without calling Graph."""
    root_path = f"/teams/{AAD_GROUP}/channels/{CHANNEL_ID}/messages/1730462400001"
    reply_path = f"/teams/{AAD_GROUP}/channels/{CHANNEL_ID}/messages/1730462400001/replies/1730462400002"
    graph.add_message(root_path)
    graph.add_message(reply_path)
    async with running_bot(q_settings()) as bot:
        await mark(bot, "contoso-phish.com", Verdict.MALICIOUS)
        unknown = channel_post(teams.service_url, sender_of(ALICE), f"look {PHISH}", activity_id="1730462400005")
        await send(bot, teams, unknown)
        (failed,) = await eventually(in_state(bot, "failed"))
        assert "AAD group id" in failed["why"] and graph.patches() == []
        for activity in (channel_post(teams.service_url, sender_of(ALICE), f"look {PHISH}"),
                         channel_post(teams.service_url, sender_of(BOB), f"also {PHISH}", activity_id="1730462400002",
                                      root="1730462400001")):
            activity["channelData"]["team"]["aadGroupId"] = AAD_GROUP
            await send(bot, teams, activity)
        await eventually(in_state(bot, "hidden", 2))
        assert sorted(c.path for c in graph.patches()) == sorted([root_path, reply_path])


async def test_retention_keeps_hidden_records_only(db_url: str) -> None:
    """Past the message horizon, released and failed records and reports go; a still-hidden record stays."""
    from shared.privacy import RetentionPolicy, purge
    from shared.quarantine import JudgedLink, State
    from shared.store import open_database
    from shared.store.quarantine import QuarantineStore

    db = await open_database(db_url)
    try:
        old = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
        async with db.transaction() as tx:
            for n, state in enumerate((State.HIDDEN, State.RELEASED, State.FAILED)):
                await QuarantineStore.insert(
                    tx, conversation_id="19:c@thread.v2", message_id=f"m{n}", target={}, sender="a@b.example",
                    sender_aad_object_id=None, links=[JudgedLink(PHISH, "malicious")], reason="r", cause="arrival",
                    state=state, state_detail=None, requested_by="Safe Links", now=old)
            await tx.execute("INSERT INTO message_reports (conversation_id, message_id, reporter_id, reported_at) "
                             "VALUES ('19:c@thread.v2', 'm0', '29:x', ?)", (old,))
        done = await purge(db, RetentionPolicy(), datetime(2026, 11, 1, tzinfo=UTC))
        assert (done["quarantine"], done["reports"]) == (2, 1)
        left = await QuarantineStore(db).records()
        assert [r.state for r in left] == [State.HIDDEN]
    finally:
        await db.close()


async def test_two_replicas_hide_a_message_once(q_settings: Callable[..., Settings], teams: TeamsStandIn,
                                                graph: GraphStandIn) -> None:
    """Two replicas on one store both work the outbox and watch verdict changes: Graph is called once."""
    graph.add_message(CHAT_PATH)
    settings = q_settings()
    async with running_bot(settings) as one, running_bot(settings) as two:
        await send(one, teams, group_chat_message(teams.service_url, sender_of(ALICE), f"see {PHISH}"))
        await eventually(lambda: one.rows("teams_messages"))
        change = await two.services.admin_verdicts.set("contoso-phish.com", Verdict.MALICIOUS, reason="kit",
                                                       now=datetime(2026, 11, 1, 13, tzinfo=UTC).timestamp())
        assert change is not None
        for replica in (one, two):
            replica.services.verdicts.invalidate()
            replica.services.bus.publish(change)
        await eventually(in_state(one, "hidden"))
        for replica in (one, two):  # each replica has handled the change, and what it queued has gone out
            await replica.services.bus.drain()
        await delivered(one.services.db)
        assert [c.status for c in graph.patches()] == [200]
        assert len(await records(two)) == 1


async def test_an_edit_does_not_undo_a_release(q_settings: Callable[..., Settings], teams: TeamsStandIn,
                                               graph: GraphStandIn) -> None:
    """Once an analyst released a message, editing it (the link still malicious) does not hide it again."""
    from tests.teams_standin import edited

    graph.add_message(CHAT_PATH)
    async with running_bot(q_settings()) as bot:
        await mark(bot, "contoso-phish.com", Verdict.MALICIOUS)
        original = group_chat_message(teams.service_url, sender_of(ALICE), f"see {PHISH}")
        await send(bot, teams, original)
        (hidden,) = await eventually(in_state(bot, "hidden"))
        released = await bot.client.post(f"/api/v1/quarantine/{hidden['id']}/release", headers=AUTH)
        assert released.status == 202
        await eventually(in_state(bot, "released"))
        await send(bot, teams, edited(original, f"see {PHISH} (fixed typo)"))
        await delivered(bot.services.db)
        assert [c.body["policyViolation"]["dlpAction"] for c in graph.patches()] == ["BlockAccess", "None"]
        assert (await records(bot))[0]["state"] == "released"


@pytest.mark.parametrize(("expression", "hours_after", "found"), [
    ("contoso-phish.com/", 1, ["m-phish"]),  # a host covers its URLs
    ("login.contoso-phish.com/reset", 1, ["m-phish"]),  # an exact URL
    ("login.contoso-phish.com/other", 1, []),  # another path of the host
    ("contoso-phish.com/", 49, []),  # delivered more than 48 hours before the change
    ("contoso-phish.com/", -1, []),  # delivered after the change
    ("example.org/", 1, ["m-org"]),
])
async def test_lookback_covers_by_expression_within_the_window(db_url: str, expression: str, hours_after: float,
                                                               found: list[str]) -> None:
    """A change covers the messages holding a URL it covers, delivered in the 48 hours before it."""
    from shared.events import VerdictChanged
    from shared.evidence import TeamsMessageEvidence
    from shared.quarantine.lookback import covered_messages
    from shared.store import open_database
    from shared.store.messages import EvidenceStore

    db = await open_database(db_url)
    at = datetime(2026, 11, 1, 12, tzinfo=UTC)
    try:
        kept = (("m-phish", PHISH, "groupChat", "19:c@thread.v2"),
                ("m-org", "https://www.example.org/a", "channel", "19:c@thread.tacv2"),
                ("m-self", PHISH, "personal", "a:1personal-chat-with-the-bot"))
        for message_id, url, kind, conversation in kept:
            await EvidenceStore(db).save(TeamsMessageEvidence(
                conversation_id=conversation, message_id=message_id, thread_id=conversation,
                thread_type="Chat", thread_sub_type=kind, received_at=at, urls=(url,)))
        change = VerdictChanged(1, expression, "unknown", "malicious", (), "admin", "kit",
                                at + timedelta(hours=hours_after))
        hits = [ev.message_id async for ev, _ in covered_messages(db, [change], 48 * 3600.0)]
        assert hits == found
    finally:
        await db.close()


async def test_alert_raised_after_the_hide_shows_it_and_offers_release(
        q_settings: Callable[..., Settings], teams: TeamsStandIn, graph: GraphStandIn) -> None:
    """A click on the reply card's link after the message was hidden raises an alert that learns the message is
    hidden (a comment, and Release message on the security channel's card)."""
    from urllib.parse import urlsplit

    from shared.clicks import Workload
    from shared.signing import LinkContext
    from tests.conftest import BROWSER_UA

    graph.add_message(CHAT_PATH)
    async with running_bot(q_settings()) as bot:
        before = len(teams.delivered())
        await send(bot, teams, channel_post(teams.service_url, sender_of(SOC), "alerts here", mention=True,
                                            activity_id="1730462409999"))
        await teams.wait_for(lambda s: len(s.delivered()) > before)
        await mark(bot, "contoso-phish.com", Verdict.MALICIOUS)
        await send(bot, teams, group_chat_message(teams.service_url, sender_of(ALICE), f"see {PHISH}"))
        await eventually(in_state(bot, "hidden"))
        context = LinkContext(workload=Workload.TEAMS, tenant="t", conversation=GROUP_CHAT_ID,
                              message="1730462400101", sender=ALICE["userPrincipalName"],
                              recipient=BOB["userPrincipalName"], recipient_id=BOB["aadObjectId"])
        link = urlsplit(bot.services.signer.wrap(PHISH, context))
        page = await bot.client.get(f"{link.path}?{link.query}", headers={"User-Agent": BROWSER_UA},
                                    allow_redirects=False)
        assert page.status == 200

        async def told() -> Any:
            async with bot.client.get("/api/v1/alerts", headers=AUTH) as r:
                found = (await r.json())["value"]
            return [a for a in found if any("hidden" in c["comment"] for c in a["comments"])]

        (alert,) = await eventually(told)
        assert alert["title"] == "User clicked a malicious link in Teams chat"

        def release_offered(s: TeamsStandIn) -> bool:
            return any("quarantine.release" in json.dumps(c.body) for c in s.delivered())

        await teams.wait_for(release_offered)


async def test_a_message_not_addressable_at_first_is_hidden_on_the_next_change(
        q_settings: Callable[..., Settings], teams: TeamsStandIn, graph: GraphStandIn) -> None:
    """A channel message that failed for want of the team's group id is hidden by a later verdict change once
    the group id is known, and can then be released at the same Graph path."""
    path = f"/teams/{AAD_GROUP}/channels/{CHANNEL_ID}/messages/1730462400005"
    graph.add_message(path)
    later = datetime(2026, 11, 1, 13, tzinfo=UTC).timestamp()
    async with running_bot(q_settings()) as bot:
        await mark(bot, "contoso-phish.com", Verdict.MALICIOUS)
        await send(bot, teams, channel_post(teams.service_url, sender_of(ALICE), f"look {PHISH}",
                                            activity_id="1730462400005"))
        (failed,) = await eventually(in_state(bot, "failed"))
        learned = channel_post(teams.service_url, sender_of(BOB), "https://example.org/x", activity_id="1730462400006")
        learned["channelData"]["team"]["aadGroupId"] = AAD_GROUP
        await send(bot, teams, learned)
        await mark(bot, "contoso-phish.com", Verdict.CLEAN, now=later - 60)
        await mark(bot, "contoso-phish.com", Verdict.MALICIOUS, now=later)
        (hidden,) = await eventually(in_state(bot, "hidden"))
        assert hidden["id"] == failed["id"] and hidden["cause"] == "verdict-change"
        released = await bot.client.post(f"/api/v1/quarantine/{hidden['id']}/release", headers=AUTH)
        assert released.status == 202, await released.text()
        await eventually(in_state(bot, "released"))
        assert [(c.path, c.body["policyViolation"]["dlpAction"]) for c in graph.patches()] == [
            (path, "BlockAccess"), (path, "None")]


async def test_export_and_erasure_cover_quarantine_and_reports(db_url: str) -> None:
    """A person's export lists the quarantined messages they sent or released and their reports; erasure
    leaves none of their identifiers or words there."""
    from shared.privacy import erase_subject, export_subject
    from shared.quarantine import JudgedLink, State
    from shared.store import open_database
    from shared.store.conversations import ConversationStore, StoredUser
    from shared.store.quarantine import QuarantineStore

    upn, at = "adele@contoso.example", datetime(2026, 11, 1, 12, tzinfo=UTC)
    db = await open_database(db_url)
    try:
        await ConversationStore(db).remember_users([StoredUser("29:adele", "aad-adele", "Adele Vance", upn, None, at)])
        async with db.transaction() as tx:
            await QuarantineStore.insert(
                tx, conversation_id="19:c@thread.v2", message_id="m1", target={}, sender=upn,
                sender_aad_object_id="aad-adele", links=[JudgedLink(PHISH, "malicious")], reason="r", cause="arrival",
                state=State.HIDDEN, state_detail=None, requested_by="Safe Links", now=at.timestamp())
            await QuarantineStore.insert(
                tx, conversation_id="19:c@thread.v2", message_id="m2", target={}, sender="grady@contoso.example",
                sender_aad_object_id="aad-grady", links=[], reason="r", cause="manual", state=State.HIDDEN,
                state_detail=None, requested_by="Adele Vance", now=at.timestamp())
            await tx.execute("INSERT INTO message_reports (conversation_id, message_id, reporter_id, "
                             "reporter_aad_object_id, reporter_name, note, reported_at) VALUES "
                             "('19:c@thread.v2', 'm1', '29:adele', 'aad-adele', 'Adele Vance', 'adele says hi', ?)",
                             (at.timestamp(),))
        exported = await export_subject(db, upn, now=at)
        assert (exported["counts"]["quarantined_messages"], exported["counts"]["message_reports"]) == (2, 1)
        await erase_subject(db, upn, b"k" * 32)
        rows = [*await db.fetchall("SELECT * FROM quarantined_messages"),
                *await db.fetchall("SELECT * FROM message_reports")]
        text = json.dumps([dict(r) for r in rows]).lower()
        for trace in (upn, "aad-adele", "29:adele", "adele vance", "adele says hi"):
            assert trace not in text, trace
        assert "grady@contoso.example" in text
    finally:
        await db.close()
