"""The "Report to security" message action end to end: Teams invoke in, confirmation out, alert, card, buttons."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from manifest.build import render_manifest
from shared.config import Settings
from shared.verdicts.model import Verdict
from tests.graph_standin import GraphStandIn, graph_standin
from tests.seed_cast import ALICE, BOB, PHISH, POLICIES, SOC, cast_standin
from tests.teams_standin import (
    BOT_ID,
    CHANNEL_ID,
    GROUP_CHAT_ID,
    TENANT,
    BotHarness,
    TeamsStandIn,
    card_action,
    channel_post,
    group_chat_message,
    running_bot,
    sender_of,
)
from tests.waiting import eventually

TOKEN = "report-api-token-0123456789abcdefgh"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHAT_PATH = f"/chats/{GROUP_CHAT_ID}/messages/1730462400101"
TITLE = "Teams message reported by user as a security risk"


@pytest.fixture
def teams() -> Iterator[TeamsStandIn]:
    yield from cast_standin()


@pytest.fixture
async def graph() -> AsyncIterator[GraphStandIn]:
    async with graph_standin() as standin:
        standin.add_message(CHAT_PATH)
        yield standin


@pytest.fixture
def settings_for(make_settings: Callable[..., Settings], teams: TeamsStandIn, graph: GraphStandIn,
                 tmp_path: Path) -> Callable[..., Settings]:
    policy = tmp_path / "policies.yaml"
    policy.write_text(POLICIES, encoding="utf-8")

    def make(**overrides: Any) -> Settings:
        values = {"policy_file": policy, "admins": SOC["aadObjectId"], "api_tokens": TOKEN,
                  "teams_quarantine": "malicious", **teams.bot_settings(), **graph.settings()}
        return make_settings(**{**values, **overrides})

    return make


def report_invoke(service_url: str, reporter: dict[str, Any], text: str, *, message_id: str = "1730462400101",
                  author: dict[str, Any] = ALICE, note: str = "looks like phishing",
                  command: str | None = "reportMessage",
                  conversation: dict[str, Any] | None = None) -> dict[str, Any]:
    """A composeExtension/submitAction as Teams sends it for a message action run in a group chat."""
    value: dict[str, Any] = {
        "commandContext": "message", "data": {"note": note},
        "messagePayload": {
            "id": message_id, "replyToId": None, "createdDateTime": "2026-11-01T12:00:00.123Z",
            "body": {"contentType": "html", "content": f"<p>{text}</p>"},
            "from": {"user": {"id": author["aadObjectId"], "displayName": author["name"],
                              "userIdentityType": "aadUser"}},
            "linkToMessage": f"https://teams.microsoft.com/l/message/{GROUP_CHAT_ID}/{message_id}",
        },
    }
    if command is not None:
        value["commandId"] = command
    return {
        "type": "invoke", "name": "composeExtension/submitAction", "id": "f:report-1",
        "timestamp": "2026-11-01T12:05:00.000Z", "serviceUrl": service_url, "channelId": "msteams",
        "from": sender_of(reporter), "recipient": {"id": BOT_ID, "name": "Safe Links"}, "locale": "en-US",
        "conversation": conversation or {"isGroup": True, "conversationType": "groupChat", "tenantId": TENANT,
                                         "id": GROUP_CHAT_ID},
        "channelData": {"tenant": {"id": TENANT}, "source": {"name": "message"}}, "value": value,
    }


async def post(bot: BotHarness, teams: TeamsStandIn, activity: dict[str, Any]) -> Any:
    return await bot.post(activity, teams.token())


async def reported(bot: BotHarness) -> list[dict[str, Any]]:
    async with bot.client.get("/api/v1/alerts", headers=AUTH) as r:
        return [a for a in (await r.json())["value"] if a["title"] == TITLE]


async def quarantined(bot: BotHarness, state: str) -> list[dict[str, Any]]:
    return [r for r in await bot.rows("quarantined_messages") if r["state"] == state]


async def security_channel(bot: BotHarness, teams: TeamsStandIn) -> None:
    before = len(teams.delivered())
    response = await post(bot, teams, channel_post(teams.service_url, sender_of(SOC), "alerts here", mention=True,
                                                   activity_id="1730462409999"))
    assert response.status in (200, 201)
    await teams.wait_for(lambda s: len(s.delivered()) > before)


def security_cards(teams: TeamsStandIn) -> list[dict[str, Any]]:
    found = []
    for call in teams.delivered():
        body = call.body or {}
        activity = body.get("activity", body) or {}
        for attachment in activity.get("attachments") or []:
            if TITLE in json.dumps(attachment.get("content")):
                found.append(attachment["content"])
    return found


def verbs_of(card: dict[str, Any]) -> list[str]:
    return [a.get("verb") for a in card.get("actions", []) if a.get("type") == "Action.Execute"]


async def press(bot: BotHarness, teams: TeamsStandIn, who: dict[str, Any], verb: str, alert_id: int) -> Any:
    activity = card_action(teams.service_url, sender_of(who), verb, {"alert_id": alert_id},
                           conversation_id=f"{CHANNEL_ID};messageid=1", trigger="manual")
    return await (await post(bot, teams, activity)).json()


async def test_report_of_a_malicious_message_is_high_and_release_is_for_admins(
        settings_for: Callable[..., Settings], teams: TeamsStandIn, graph: GraphStandIn, db_url: str) -> None:
    """A reported message whose link is malicious: a short confirmation within Teams' 5 s, a high alert with the
    reporter and the sender as entities on the security channel's card, which offers Release message (the
    message was hidden on arrival) to administrators only; the release shows on the alert with who did it."""
    async with running_bot(settings_for(database_url=db_url)) as bot:
        await bot.services.admin_verdicts.set("contoso-phish.com", Verdict.MALICIOUS, reason="phishing kit")
        bot.services.verdicts.invalidate()
        await security_channel(bot, teams)
        response = await post(bot, teams, group_chat_message(teams.service_url, sender_of(ALICE), f"see {PHISH}"))
        assert response.status in (200, 201)
        await graph.wait_for(lambda g: any(c.status == 200 for c in g.patches()))

        started = time.monotonic()
        answer = await post(bot, teams, report_invoke(teams.service_url, BOB, f"see {PHISH}"))
        assert answer.status == 200 and time.monotonic() - started < 5
        body = await answer.json()
        assert body["task"]["type"] == "message" and "malicious" in body["task"]["value"]

        (alert,) = await eventually(lambda: reported(bot))
        assert alert["severity"] == "high"
        users = {e["detailedRoles"][0]: e["userAccount"]["azureAdUserId"] for e in alert["evidence"]
                 if e["@odata.type"].endswith("userEvidence")}
        assert users == {"User who reported the message": BOB["aadObjectId"],
                         "Sender of the reported message": ALICE["aadObjectId"]}
        message = next(e for e in alert["evidence"] if e["@odata.type"].endswith("teamsMessageEvidence"))
        assert message["messageId"] == "1730462400101" and message["urls"][0]["url"] == PHISH
        assert alert["incidentId"]

        await teams.wait_for(lambda s: bool(security_cards(s)))
        card = security_cards(teams)[-1]
        assert "Release message" in json.dumps(card) and "Bob Clicker reported a Teams message" in json.dumps(card)
        assert "quarantine.release" in verbs_of(card) and "quarantine.hide" not in verbs_of(card)

        refused = await press(bot, teams, BOB, "quarantine.release", int(alert["id"]))
        assert refused["statusCode"] == 400 and "administrators" in json.dumps(refused)
        done = await press(bot, teams, SOC, "quarantine.release", int(alert["id"]))
        assert done["statusCode"] == 200
        await graph.wait_for(lambda g: g.patches()[-1].body["policyViolation"]["dlpAction"] == "None")

        async def commented() -> Any:
            async with bot.client.get(f"/api/v1/alerts/{alert['id']}", headers=AUTH) as r:
                found = await r.json()
            return found if any("released" in c["comment"] for c in found["comments"]) else None

        shown = await eventually(commented)
        assert any("Sam Analyst" in c["comment"] for c in shown["comments"])
        async with bot.client.get(f"/api/v1/incidents/{alert['incidentId']}", headers=AUTH) as r:
            assert r.status == 200
        actions = await bot.services.db.fetchall("SELECT * FROM alert_actions WHERE via = 'quarantine'")
        assert actions and all(a["incident_id"] == int(alert["incidentId"]) for a in actions)
        audit = await bot.services.db.fetchall("SELECT * FROM audit_log WHERE action LIKE 'quarantine.%'")
        assert [(a["via"], a["actor"], a["actor_name"], a["action"]) for a in audit] == [
            ("card", SOC["aadObjectId"], "Sam Analyst", "quarantine.release")]  # the refused press left no trace


async def test_report_of_a_clean_message_is_informational_and_can_be_hidden(
        settings_for: Callable[..., Settings], teams: TeamsStandIn, graph: GraphStandIn) -> None:
    """A clean reported message: informational, the message kept as evidence; the card offers Hide message,
    which hides it through Graph; the same reporter reporting again makes no second alert."""
    async with running_bot(settings_for()) as bot:
        await security_channel(bot, teams)
        text = "quarterly numbers https://intranet.contoso.example/q3"
        answer = await (await post(bot, teams, report_invoke(teams.service_url, BOB, text))).json()
        assert "reported to your security team" in answer["task"]["value"]
        (alert,) = await eventually(lambda: reported(bot))
        assert alert["severity"] == "informational"
        kept = await bot.rows("teams_messages")
        assert [(m["message_id"], json.loads(m["urls"])) for m in kept] == [
            ("1730462400101", ["https://intranet.contoso.example/q3"])]
        reports = await bot.rows("message_reports")
        assert [(r["note"], r["alert_id"]) for r in reports] == [("looks like phishing", int(alert["id"]))]

        await teams.wait_for(lambda s: bool(security_cards(s)))
        assert "quarantine.hide" in verbs_of(security_cards(teams)[-1])
        hidden = await press(bot, teams, SOC, "quarantine.hide", int(alert["id"]))
        assert hidden["statusCode"] == 200, hidden
        await graph.wait_for(lambda g: any(c.status == 200 for c in g.patches()))
        assert graph.patches()[-1].body["policyViolation"]["dlpAction"] == "BlockAccess"
        audit = await bot.services.db.fetchall("SELECT * FROM audit_log WHERE action LIKE 'quarantine.%'")
        assert [(a["via"], a["actor"], a["action"]) for a in audit] == [
            ("card", SOC["aadObjectId"], "quarantine.hide")]

        again = await (await post(bot, teams, report_invoke(teams.service_url, BOB, text))).json()
        assert "already reported" in again["task"]["value"]
        assert len(await reported(bot)) == 1


async def test_report_without_quarantine_offers_no_hide(settings_for: Callable[..., Settings],
                                                       teams: TeamsStandIn) -> None:
    """With quarantine off the reported message's card has no Hide message button, and the button is refused."""
    async with running_bot(settings_for(teams_quarantine="off")) as bot:
        await security_channel(bot, teams)
        await post(bot, teams, report_invoke(teams.service_url, BOB, "hello https://example.org/x"))
        (alert,) = await eventually(lambda: reported(bot))
        await teams.wait_for(lambda s: bool(security_cards(s)))
        assert "quarantine.hide" not in verbs_of(security_cards(teams)[-1])
        refused = await press(bot, teams, SOC, "quarantine.hide", int(alert["id"]))
        assert refused["statusCode"] == 400 and "quarantine is off" in json.dumps(refused)


@pytest.mark.parametrize(("change", "status"), [
    ({"command": None}, 400),
    ({"command": "somethingElse"}, 200),
])
async def test_bad_message_actions_are_answered(settings_for: Callable[..., Settings], teams: TeamsStandIn,
                                                change: dict[str, Any], status: int) -> None:
    """A submitAction without a command id is a 400; an unknown command gets a message, and no alert."""
    async with running_bot(settings_for()) as bot:
        response = await post(bot, teams, report_invoke(teams.service_url, BOB, "hi", **change))
        assert response.status == status
        if status == 200:
            assert "Unknown action" in (await response.json())["task"]["value"]
        assert await reported(bot) == []


def test_manifest_declares_the_report_action() -> None:
    """The manifest has a message action "Report to security" answered by the bot itself."""
    app_id = "9a1c7e55-3f5e-4b8e-9d0a-5b6a7f3c2d10"
    manifest = render_manifest(app_id, "https://safelinks.contoso.example")
    (extension,) = manifest["composeExtensions"]
    (command,) = extension["commands"]
    assert extension["botId"] == app_id == manifest["bots"][0]["botId"]
    assert (command["id"], command["type"], command["context"], command["title"]) == (
        "reportMessage", "action", ["message"], "Report to security")


async def test_report_alert_is_mailed_like_the_others(settings_for: Callable[..., Settings],
                                                      teams: TeamsStandIn) -> None:
    """The report alert goes to SAFELINKS_ALERT_EMAIL_TO and the webhooks like the built-in alerts, with its
    severity, and its updates are announced to the webhooks too."""
    from tests.smtp_server import smtp_server

    with smtp_server() as (mailbox, port):
        settings = settings_for(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none",
                                alert_email_to="soc@contoso.example", alert_webhook_urls="http://127.0.0.1:9/hook")
        async with running_bot(settings) as bot:
            await post(bot, teams, report_invoke(teams.service_url, BOB, "hello https://example.org/x"))

            async def mailed() -> bool:
                return bool(mailbox.messages)

            await eventually(mailed)
            (alert,) = await reported(bot)
            resolved = await bot.client.patch(f"/api/v1/alerts/{alert['id']}", json={"status": "resolved"},
                                              headers=AUTH)
            assert resolved.status == 200
            events = [json.loads(r["payload"])["event"] for r in await bot.rows("outbox") if r["kind"] == "webhook"]
            assert events == ["alert.created", "alert.updated"]
    assert [m["Subject"] for m in mailbox.messages] == [f"[Informational] {TITLE}"]


@pytest.mark.parametrize(("chat_id", "hideable"), [
    ("19:aad-0001_aad-0002@unq.gbl.spaces", True),  # a one-on-one chat between two people
    ("a:1personal-chat-with-the-bot", False),  # only its sender reads it
])
async def test_reported_one_on_one_chat_message_can_be_hidden(
        settings_for: Callable[..., Settings], teams: TeamsStandIn, graph: GraphStandIn, chat_id: str,
        hideable: bool) -> None:
    """A message reported from a one-on-one chat between people can be hidden at its Graph chat; one in a
    personal chat with the bot cannot (the button says why)."""
    path = f"/chats/{chat_id}/messages/1730462400777"
    graph.add_message(path)
    async with running_bot(settings_for()) as bot:
        await security_channel(bot, teams)
        personal = {"conversationType": "personal", "tenantId": TENANT, "id": chat_id}
        await post(bot, teams, report_invoke(teams.service_url, BOB, "pay here https://example.org/pay",
                                             message_id="1730462400777", conversation=personal))
        (alert,) = await eventually(lambda: reported(bot))
        answer = await press(bot, teams, SOC, "quarantine.hide", int(alert["id"]))
        if hideable:
            assert answer["statusCode"] == 200, answer
            await graph.wait_for(lambda g: [c.path for c in g.patches()] == [path])
        else:
            assert answer["statusCode"] == 400 and "personal chat with the bot" in json.dumps(answer)
