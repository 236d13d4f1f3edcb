"""Quarantine in the console over HTTP: the Quarantine page and its Release, the incident's Hide / Release
message, each through the quarantine service and Microsoft Graph (a stand-in on loopback), each audited."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.config import Settings
from shared.verdicts.model import Verdict
from tests.conftest import run_cli
from tests.console_rig import signed_in
from tests.graph_standin import GraphStandIn
from tests.teams_standin import BotHarness, TeamsStandIn, group_chat_message, running_bot, sender_of
from tests.test_report_message import (
    ALICE,
    BOB,
    PHISH,
    eventually,
    graph,
    post,
    quarantined,
    report_invoke,
    reported,
    security_channel,
    settings_for,
    teams,
)

__all__ = ["graph", "settings_for", "teams"]  # fixtures shared with the message report tests


async def audited(bot: BotHarness, prefix: str) -> list[tuple[str, str, str, str]]:
    return [(a["via"], a["actor"], a["action"], a["target"]) for a in await bot.rows("audit_log")
            if a["action"].startswith(prefix)]


async def test_quarantine_page_lists_filters_and_releases(settings_for: Callable[..., Settings], teams: TeamsStandIn,
                                                          graph: GraphStandIn, db_url: str) -> None:
    """With quarantine on, Quarantine is in the navigation; its list is filtered in the store (a bad filter is a
    400); Release needs the form's CSRF token, asks Graph for dlpAction None, and is audited with the console user."""
    async with running_bot(settings_for(database_url=db_url)) as bot:
        await bot.services.admin_verdicts.set("contoso-phish.com", Verdict.MALICIOUS, reason="phishing kit")
        bot.services.verdicts.invalidate()
        await post(bot, teams, group_chat_message(teams.service_url, sender_of(ALICE), f"see {PHISH}"))
        (hidden,) = await eventually(lambda: quarantined(bot, "hidden"))
        csrf = await signed_in(bot.client, bot.app)
        overview = await (await bot.client.get("/console/")).text()
        assert '<a href="/console/quarantine">Quarantine</a>' in overview
        html = await (await bot.client.get("/console/quarantine")).text()
        assert f'id="q-{hidden["id"]}"' in html and "status-q-hidden" in html and PHISH in html
        for query, shown in (({"state": "hidden"}, True), ({"state": "released"}, False),
                             ({"url": "CONTOSO-PHISH"}, True), ({"url": "100%_"}, False),
                             ({"sender": "nobody"}, False), ({"since": "1h"}, True)):
            page = await (await bot.client.get("/console/quarantine", params=query)).text()
            assert (f'id="q-{hidden["id"]}"' in page) is shown, query
        bad = await bot.client.get("/console/quarantine", params={"state": "gone"})
        assert bad.status == 400 and "state must be one of" in await bad.text()

        release = f"/console/quarantine/{hidden['id']}/release"
        forged = await bot.client.post(release, data={"csrf": "not-it"}, allow_redirects=False)
        assert forged.status == 403 and await quarantined(bot, "hidden")
        done = await bot.client.post(release, data={"csrf": csrf}, allow_redirects=False)
        assert done.status == 303 and done.headers["Location"] == "/console/quarantine?done=released"
        await eventually(lambda: quarantined(bot, "released"))
        assert graph.patches()[-1].body["policyViolation"]["dlpAction"] == "None"
        assert await audited(bot, "quarantine.") == [
            ("console", "local-admin", "quarantine.release", f"quarantine {hidden['id']}")]
        again = await bot.client.post(release, data={"csrf": csrf})
        assert again.status == 200 and "already released or being released" in await again.text()
        assert (await bot.client.post("/console/quarantine/999/release", data={"csrf": csrf})).status == 404
        page = await (await bot.client.get("/console/quarantine", params={"state": "released"})).text()
        assert "release asked by Local administrator" in page


async def test_incident_hides_and_releases_a_reported_message(settings_for: Callable[..., Settings],
                                                              teams: TeamsStandIn, graph: GraphStandIn) -> None:
    """A reported message's incident offers Hide message (as its card does); pressed, Graph hides it, the story
    shows it hidden and offers Release message; both are audited with the console user."""
    async with running_bot(settings_for()) as bot:
        await security_channel(bot, teams)
        await post(bot, teams, report_invoke(teams.service_url, BOB, "quarterly https://intranet.contoso.example/q3"))
        (alert,) = await eventually(lambda: reported(bot))
        incident = f"/console/incidents/{alert['incidentId']}"
        csrf = await signed_in(bot.client, bot.app)
        html = await (await bot.client.get(incident)).text()
        assert 'value="hide_message"' in html and 'value="release_message"' not in html
        form = {"csrf": csrf, "alert_id": alert["id"]}
        hid = await bot.client.post(incident, data={**form, "do": "hide_message"}, allow_redirects=False)
        assert hid.status == 303, await hid.text()
        (record,) = await eventually(lambda: quarantined(bot, "hidden"))
        assert graph.patches()[-1].body["policyViolation"]["dlpAction"] == "BlockAccess"
        html = await (await bot.client.get(incident)).text()
        assert f"Message: hidden from its readers (quarantine #{record['id']})" in html
        assert re.search(r'<span class="kind">quarantine</span>', html)
        assert 'value="release_message"' in html and 'value="hide_message"' not in html
        released = await bot.client.post(incident, data={**form, "do": "release_message"}, allow_redirects=False)
        assert released.status == 303
        await eventually(lambda: quarantined(bot, "released"))
        assert [a[2] for a in await audited(bot, "quarantine.")] == ["quarantine.hide", "quarantine.release"]
        assert {a[:2] for a in await audited(bot, "quarantine.")} == {("console", "local-admin")}


async def test_quarantine_off_hides_the_page_and_the_buttons(settings_for: Callable[..., Settings],
                                                             teams: TeamsStandIn) -> None:
    """With quarantine off there is no Quarantine page or navigation entry, no Hide message, and a forged
    hide is refused with the reason."""
    async with running_bot(settings_for(teams_quarantine="off")) as bot:
        await post(bot, teams, report_invoke(teams.service_url, BOB, "hello https://example.org/x"))
        (alert,) = await eventually(lambda: reported(bot))
        csrf = await signed_in(bot.client, bot.app)
        overview = await (await bot.client.get("/console/")).text()
        assert "/console/quarantine" not in overview
        assert (await bot.client.get("/console/quarantine")).status == 404
        incident = f"/console/incidents/{alert['incidentId']}"
        assert 'value="hide_message"' not in await (await bot.client.get(incident)).text()
        refused = await bot.client.post(incident, data={"csrf": csrf, "alert_id": alert["id"], "do": "hide_message"})
        assert refused.status == 400 and "quarantine is off" in await refused.text()
        assert await bot.rows("quarantined_messages") == []


async def test_cli_release_is_audited_as_the_account(settings_for: Callable[..., Settings], teams: TeamsStandIn,
                                                     graph: GraphStandIn, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`safelinks quarantine release ID --by NAME` goes through the same service: the running worker asks Graph,
    and the audit log records the account that ran the command, with NAME as the name shown."""
    from safelinks.cli.context import CLI_ACTOR

    settings = settings_for()
    async with running_bot(settings) as bot:
        await bot.services.admin_verdicts.set("contoso-phish.com", Verdict.MALICIOUS, reason="phishing kit")
        bot.services.verdicts.invalidate()
        await post(bot, teams, group_chat_message(teams.service_url, sender_of(ALICE), f"see {PHISH}"))
        (hidden,) = await eventually(lambda: quarantined(bot, "hidden"))
        config = tmp_path / "cli.yaml"
        config.write_text(f"data_dir: {settings.data_dir}\n", encoding="utf-8")
        code, out, _ = await asyncio.to_thread(run_cli, capsys, "--config", str(config), "quarantine", "release",
                                               str(hidden["id"]), "--by", "Night Shift")
        assert code == 0 and "releasing" in out
        (released,) = await eventually(lambda: quarantined(bot, "released"))
        assert released["released_by"] == "Night Shift"
        assert [(a["via"], a["actor"], a["actor_name"], a["action"]) for a in await bot.rows("audit_log")] == [
            ("cli", CLI_ACTOR.id, "Night Shift", "quarantine.release")]
