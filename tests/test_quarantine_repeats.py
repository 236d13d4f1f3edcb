"""Hide or release asked twice, through each way in (API, command line, console, card): the second asks
changes nothing, so it writes no audit row and no Graph call, and it answers that the message already is so."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings
from shared.verdicts.model import Verdict
from tests.conftest import run_cli
from tests.console_rig import signed_in
from tests.graph_standin import GraphStandIn
from tests.teams_standin import BotHarness, TeamsStandIn, group_chat_message, running_bot, sender_of
from tests.test_report_message import (
    ALICE,
    AUTH,
    BOB,
    PHISH,
    SOC,
    eventually,
    graph,
    post,
    press,
    quarantined,
    report_invoke,
    reported,
    security_channel,
    settings_for,
    teams,
)
from tests.waiting import delivered

__all__ = ["graph", "settings_for", "teams"]  # fixtures shared with the message report tests


async def audited(bot: BotHarness, action: str) -> list[dict[str, Any]]:
    return [a for a in await bot.rows("audit_log") if a["action"] == action]


def graph_calls(graph: GraphStandIn, dlp_action: str) -> int:
    return sum(1 for c in graph.patches() if c.body["policyViolation"]["dlpAction"] == dlp_action)


async def hidden_on_arrival(bot: BotHarness, teams: TeamsStandIn) -> dict[str, Any]:
    """A malicious link's message, hidden when it arrived (through Safe Links, so no audit row)."""
    await bot.services.admin_verdicts.set("contoso-phish.com", Verdict.MALICIOUS, reason="phishing kit")
    bot.services.verdicts.invalidate()
    await post(bot, teams, group_chat_message(teams.service_url, sender_of(ALICE), f"see {PHISH}"))
    (record,) = await eventually(lambda: quarantined(bot, "hidden"))
    return record


async def settled(bot: BotHarness, state: str) -> None:
    await eventually(lambda: quarantined(bot, state))
    await delivered(bot.services.db)


async def test_api_release_twice(settings_for: Callable[..., Settings], teams: TeamsStandIn, graph: GraphStandIn,
                                 db_url: str) -> None:
    """The API's release asked again (while releasing, and once released) answers 200 with the record as it stands
    instead of 202: one audit row, one Graph call."""
    async with running_bot(settings_for(database_url=db_url)) as bot:
        record = await hidden_on_arrival(bot, teams)
        url = f"/api/v1/quarantine/{record['id']}/release"
        first = await bot.client.post(url, json={"by": "Sam Analyst"}, headers=AUTH)
        assert first.status == 202, await first.text()
        again = await bot.client.post(url, headers=AUTH)
        assert again.status == 200, await again.text()
        assert (await again.json())["state"] in ("releasing", "released")
        await settled(bot, "released")
        late = await bot.client.post(url, headers=AUTH)
        assert late.status == 200 and (await late.json())["state"] == "released"
        await delivered(bot.services.db)
        assert len(await audited(bot, "quarantine.release")) == 1
        assert graph_calls(graph, "None") == 1


async def test_cli_release_twice(settings_for: Callable[..., Settings], teams: TeamsStandIn, graph: GraphStandIn,
                                 db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`safelinks quarantine release ID` run again exits 0 saying the message is already released (or being
    released): one audit row, one Graph call."""
    settings = settings_for(database_url=db_url)
    config = tmp_path / "cli.yaml"
    config.write_text(f"data_dir: {settings.data_dir}\ndatabase_url: '{db_url}'\n", encoding="utf-8")

    async def release() -> tuple[int, str, str]:
        return await asyncio.to_thread(run_cli, capsys, "--config", str(config), "quarantine", "release",
                                       str(record["id"]))

    async with running_bot(settings) as bot:
        record = await hidden_on_arrival(bot, teams)
        code, out, err = await release()
        assert code == 0 and "releasing" in out, err
        code, out, err = await release()
        assert code == 0, err
        assert out.startswith("unchanged: ") and f"message {record['id']} is already" in out
        await settled(bot, "released")
        code, out, _ = await release()
        assert code == 0 and f"unchanged: message {record['id']} is already released" in out
        await delivered(bot.services.db)
        assert len(await audited(bot, "quarantine.release")) == 1
        assert graph_calls(graph, "None") == 1


async def test_console_quarantine_page_release_twice(settings_for: Callable[..., Settings], teams: TeamsStandIn,
                                                     graph: GraphStandIn, db_url: str) -> None:
    """The Quarantine page's Release pressed again goes back to the page saying nothing was asked again:
    one audit row, one Graph call."""
    async with running_bot(settings_for(database_url=db_url)) as bot:
        record = await hidden_on_arrival(bot, teams)
        csrf = await signed_in(bot.client, bot.app)
        release = f"/console/quarantine/{record['id']}/release"
        first = await bot.client.post(release, data={"csrf": csrf}, allow_redirects=False)
        assert first.status == 303 and first.headers["Location"] == "/console/quarantine?done=released"
        again = await bot.client.post(release, data={"csrf": csrf}, allow_redirects=False)
        assert again.status == 303 and again.headers["Location"] == "/console/quarantine?done=unchanged"
        await settled(bot, "released")
        late = await bot.client.post(release, data={"csrf": csrf})
        assert late.status == 200 and "already released or being released" in await late.text()
        await delivered(bot.services.db)
        assert len(await audited(bot, "quarantine.release")) == 1
        assert graph_calls(graph, "None") == 1


async def test_console_incident_hide_and_release_twice(settings_for: Callable[..., Settings], teams: TeamsStandIn,
                                                       graph: GraphStandIn, db_url: str) -> None:
    """The incident's Hide message and Release message, each pressed twice: the second says the message already
    is so; one audit row and one Graph call each."""
    async with running_bot(settings_for(database_url=db_url)) as bot:
        await security_channel(bot, teams)
        await post(bot, teams, report_invoke(teams.service_url, BOB, "quarterly https://intranet.contoso.example/q3"))
        (alert,) = await eventually(lambda: reported(bot))
        incident = f"/console/incidents/{alert['incidentId']}"
        form = {"csrf": await signed_in(bot.client, bot.app), "alert_id": alert["id"]}
        for do, state, done in (("hide_message", "hidden", "already hidden or being hidden"),
                                ("release_message", "released", "already released or being released")):
            first = await bot.client.post(incident, data={**form, "do": do}, allow_redirects=False)
            assert first.status == 303 and first.headers["Location"] == f"{incident}?done={do}"
            again = await bot.client.post(incident, data={**form, "do": do}, allow_redirects=False)
            assert again.status == 303 and again.headers["Location"] == f"{incident}?done={do}_unchanged"
            await settled(bot, state)
            late = await bot.client.post(incident, data={**form, "do": do})
            assert late.status == 200 and done in await late.text()
        await delivered(bot.services.db)
        assert len(await audited(bot, "quarantine.hide")) == 1
        assert len(await audited(bot, "quarantine.release")) == 1
        assert graph_calls(graph, "BlockAccess") == 1 and graph_calls(graph, "None") == 1


async def test_card_hide_and_release_twice(settings_for: Callable[..., Settings], teams: TeamsStandIn,
                                           graph: GraphStandIn, db_url: str) -> None:
    """The alert card's Hide message and Release message, each pressed twice: the second answers the card
    with a note that the message already is so; one audit row and one Graph call each."""
    async with running_bot(settings_for(database_url=db_url)) as bot:
        await security_channel(bot, teams)
        await post(bot, teams, report_invoke(teams.service_url, BOB, "quarterly https://intranet.contoso.example/q3"))
        (alert,) = await eventually(lambda: reported(bot))
        for verb, state, word in (("quarantine.hide", "hidden", "hidden"),
                                  ("quarantine.release", "released", "released")):
            first = await press(bot, teams, SOC, verb, int(alert["id"]))
            assert first["statusCode"] == 200, first
            assert "asked to" in json.dumps(first)
            again = await press(bot, teams, SOC, verb, int(alert["id"]))
            assert again["statusCode"] == 200, again
            assert "is already" in json.dumps(again) and "asked to" not in json.dumps(again)
            await settled(bot, state)
            late = await press(bot, teams, SOC, verb, int(alert["id"]))
            assert late["statusCode"] == 200 and f"is already {word}" in json.dumps(late)
        await delivered(bot.services.db)
        assert [a["via"] for a in await audited(bot, "quarantine.hide")] == ["card"]
        assert [a["via"] for a in await audited(bot, "quarantine.release")] == ["card"]
        assert graph_calls(graph, "BlockAccess") == 1 and graph_calls(graph, "None") == 1


async def test_pressed_at_the_same_time(settings_for: Callable[..., Settings], teams: TeamsStandIn,
                                        graph: GraphStandIn, db_url: str) -> None:
    """Two hides (card) and then two releases (API) sent at once: the request that comes second finds the first's
    work and answers that the message already is so; one audit row and one Graph call each."""
    async with running_bot(settings_for(database_url=db_url)) as bot:
        await security_channel(bot, teams)
        await post(bot, teams, report_invoke(teams.service_url, BOB, "quarterly https://intranet.contoso.example/q3"))
        (alert,) = await eventually(lambda: reported(bot))
        hides = await asyncio.gather(*(press(bot, teams, SOC, "quarantine.hide", int(alert["id"])) for _ in "ab"))
        assert [h["statusCode"] for h in hides] == [200, 200], hides
        assert sorted("is already" in json.dumps(h) for h in hides) == [False, True]
        (record,) = await eventually(lambda: quarantined(bot, "hidden"))
        url = f"/api/v1/quarantine/{record['id']}/release"
        releases = await asyncio.gather(*(bot.client.post(url, headers=AUTH) for _ in "ab"))
        assert sorted(r.status for r in releases) == [200, 202]
        await settled(bot, "released")
        assert len(await audited(bot, "quarantine.hide")) == 1
        assert len(await audited(bot, "quarantine.release")) == 1
        assert graph_calls(graph, "BlockAccess") == 1 and graph_calls(graph, "None") == 1
