"""The Overview's Microsoft Graph line: configured or not, used by quarantine and coverage, and how each one's
last call or round ended, as the store records it (through the console's page, Graph a stand-in on loopback)."""

from __future__ import annotations

import html as markup
import re
from collections.abc import Callable
from typing import Any

from safelinks.coverage import COVERAGE
from shared.config import Settings
from shared.verdicts.model import Verdict
from tests.console_rig import signed_in
from tests.graph_standin import GraphStandIn
from tests.graph_teamwork import CATALOG_ID
from tests.teams_standin import BotHarness, TeamsStandIn, group_chat_message, running_bot, sender_of
from tests.test_report_message import ALICE, CHAT_PATH, PHISH, eventually, graph, post, settings_for, teams

__all__ = ["graph", "settings_for", "teams"]  # fixtures shared with the message report tests


async def graph_line(bot: BotHarness) -> str:
    """The Overview's Microsoft Graph health line and its parts, as text."""
    page = await (await bot.client.get("/console/")).text()
    start = page.index("\">Microsoft Graph:")  # the last line of the Health card
    return markup.unescape(re.sub(r"<[^>]+>", " ", page[start:page.index("</section>", start)]))


async def job_ended(bot: BotHarness, outcome: str) -> dict[str, Any] | None:
    row = await bot.services.db.fetchone("SELECT outcome FROM job_runs WHERE name = 'coverage'")
    return row if row is not None and row["outcome"] == outcome else None


async def test_graph_is_not_in_use_with_quarantine_and_coverage_off(make_settings: Callable[..., Settings]) -> None:
    """With quarantine and coverage off, Graph is not in use, and the line says both are off and whether it is
    configured."""
    async with running_bot(make_settings()) as bot:
        await signed_in(bot.client, bot.app)
        line = await graph_line(bot)
        assert "Microsoft Graph: not in use" in line
        assert "quarantine (SAFELINKS_TEAMS_QUARANTINE) and coverage (SAFELINKS_COVERAGE) are off" in line
        assert "not configured" in line


async def test_coverage_without_graph_credentials_needs_attention(make_settings: Callable[..., Settings]) -> None:
    """Coverage on without Graph credentials: the line names coverage as the user, what is missing, and the
    round's failure as the job recorded it."""
    async with running_bot(make_settings(coverage="teams")) as bot:
        await signed_in(bot.client, bot.app)
        await eventually(lambda: job_ended(bot, "failed"))
        line = await graph_line(bot)
        assert "Microsoft Graph: needs attention" in line
        assert "used by coverage, but not configured: no client id" in line
        assert "coverage: the last round failed (" in line and "CoverageError: the app's catalog id" in line
        assert "quarantine" not in line


async def test_graph_line_follows_each_features_last_outcome(settings_for: Callable[..., Settings],
                                                              teams: TeamsStandIn, graph: GraphStandIn,
                                                              db_url: str) -> None:
    """Quarantine and coverage on: healthy after a round that went through; a hide Graph refused and a round
    that failed each make it need attention, saying why; a later round that goes through clears coverage's."""
    settings = settings_for(database_url=db_url, coverage="teams", coverage_catalog_app_id=CATALOG_ID)
    async with running_bot(settings) as bot:
        await signed_in(bot.client, bot.app)
        await eventually(lambda: job_ended(bot, "ok"))
        line = await graph_line(bot)
        assert "Microsoft Graph: healthy" in line and "used by quarantine and coverage; configured" in line
        assert "quarantine: no message hidden or released yet" in line
        assert "coverage: the last round went through (" in line

        graph.add_message(CHAT_PATH, external=True)  # Graph refuses (403) to hide another organisation's message
        await bot.services.admin_verdicts.set("contoso-phish.com", Verdict.MALICIOUS, reason="phishing kit")
        bot.services.verdicts.invalidate()
        await post(bot, teams, group_chat_message(teams.service_url, sender_of(ALICE), f"see {PHISH}"))

        async def failed() -> list[dict[str, Any]]:
            return [r for r in await bot.rows("quarantined_messages") if r["state"] == "failed"]

        (record,) = await eventually(failed)
        line = await graph_line(bot)
        assert "Microsoft Graph: needs attention" in line
        assert "quarantine: the last hide failed (" in line and record["state_detail"] in line

        coverage = bot.app[COVERAGE]
        graph.teamwork.granted -= {"Team.ReadBasic.All"}
        await coverage.run_round()
        line = await graph_line(bot)
        assert "coverage: the last round failed (" in line and "for teams: " in line and "403" in line
        graph.teamwork.granted |= {"Team.ReadBasic.All"}
        await coverage.run_round()
        line = await graph_line(bot)
        assert "coverage: the last round went through (" in line
        assert "Microsoft Graph: needs attention" in line  # the failed hide is still quarantine's last outcome


async def test_graph_calls_waiting_to_be_retried_need_attention(settings_for: Callable[..., Settings],
                                                                teams: TeamsStandIn, graph: GraphStandIn) -> None:
    """A hide Graph answered 503 waits in the outbox to be tried again: the line counts it and gives its error."""
    async with running_bot(settings_for()) as bot:
        await signed_in(bot.client, bot.app)
        graph.fail_next(503, count=20, retry_after="300")
        await bot.services.admin_verdicts.set("contoso-phish.com", Verdict.MALICIOUS, reason="phishing kit")
        bot.services.verdicts.invalidate()
        await post(bot, teams, group_chat_message(teams.service_url, sender_of(ALICE), f"see {PHISH}"))

        async def retrying() -> list[dict[str, Any]]:
            return [r for r in await bot.rows("outbox") if r["kind"] == "graph" and r["last_error"]]

        await eventually(retrying)
        line = await graph_line(bot)
        assert "Microsoft Graph: needs attention" in line and "used by quarantine; configured" in line
        assert "quarantine: no message hidden or released yet; 1 call failed and waits to be tried again (" in line
        assert "503" in line
