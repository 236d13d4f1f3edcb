"""The console's quarantine and held-feed pages in a real browser (Chromium driven by Playwright), against the
Graph stand-in and a feed file. Skipped, saying why, where Playwright or Chromium is missing; CONSOLE_SCREENSHOTS=DIR
keeps screenshots of the pages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings
from shared.store.feeds import FeedSpec
from shared.verdicts.model import Verdict
from tests.console_rig import browser_missing, free_port, sign_in_link
from tests.graph_standin import GraphStandIn
from tests.teams_standin import BotHarness, TeamsStandIn, group_chat_message, running_bot, sender_of
from tests.test_console_browser import page, shot
from tests.test_report_message import ALICE, PHISH, eventually, graph, post, settings_for, teams

pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))
__all__ = ["graph", "page", "settings_for", "teams"]  # fixtures shared with the other browser and report tests
FULL = "".join(f"host{n}.evil.example\n" for n in range(10))
CUT = "".join(f"host{n}.evil.example\n" for n in range(4))


@pytest.fixture
def port() -> int:
    return free_port()


async def sign_in(page: Any, bot: BotHarness, base: str) -> None:
    from playwright.async_api import expect

    await page.goto(base + await sign_in_link(bot.app))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()


async def test_an_analyst_releases_a_quarantined_message(settings_for: Callable[..., Settings], teams: TeamsStandIn,
                                                         graph: GraphStandIn, page: Any, port: int) -> None:
    """From the navigation to Quarantine: the hidden message with its link and reason; Release, and the list
    shows it released once Graph has shown it again; no browser errors."""
    from playwright.async_api import expect

    base = f"http://127.0.0.1:{port}"
    async with running_bot(settings_for(public_url=base), port=port) as bot:
        await bot.services.admin_verdicts.set("contoso-phish.com", Verdict.MALICIOUS, reason="phishing kit")
        bot.services.verdicts.invalidate()
        await post(bot, teams, group_chat_message(teams.service_url, sender_of(ALICE), f"see {PHISH}"))
        await eventually(lambda: _in_state(bot, "hidden"))
        await sign_in(page, bot, base)
        await page.get_by_role("navigation", name="Console").get_by_role("link", name="Quarantine").click()
        await expect(page.get_by_role("heading", name="Quarantine")).to_be_visible()
        row = page.locator("tbody tr").first
        await expect(row).to_contain_text(PHISH)
        await expect(row).to_contain_text("hidden")
        await expect(row).to_contain_text("phishing kit")
        await shot(page, "quarantine")
        await row.get_by_role("button", name="Release message 1").click()
        await expect(page.get_by_role("status")).to_contain_text("Release asked for")
        await eventually(lambda: _in_state(bot, "released"))
        assert graph.patches()[-1].body["policyViolation"]["dlpAction"] == "None"
        await page.get_by_label("State").select_option("released")
        await page.get_by_role("button", name="Filter").click()
        await expect(page.locator("tbody tr").first).to_contain_text("released")
        await expect(page.get_by_role("button", name="Release message 1")).to_have_count(0)
        await page.goto(base + "/console/audit")
        await expect(page.get_by_text("quarantine.release")).to_be_visible()
        assert page.problems == []


async def _in_state(bot: BotHarness, state: str) -> bool:
    return any(r["state"] == state for r in await bot.rows("quarantined_messages"))


async def test_an_admin_accepts_a_held_feed_update(make_settings: Callable[..., Settings], tmp_path: Path,
                                                   page: Any, port: int) -> None:
    """A feed whose refresh would drop more than half shows as held with why; Update now holds it again; Accept
    the held update applies it (the --force path), audited with the console user."""
    from playwright.async_api import expect

    base = f"http://127.0.0.1:{port}"
    feed = tmp_path / "list.txt"
    feed.write_text(FULL, encoding="utf-8")
    async with running_bot(make_settings(public_url=base), port=port) as bot:
        updater = bot.services.sources.updater
        await updater.registry.add(FeedSpec("local", str(feed), "plain", None, 3600.0, True), now=0.0)
        assert (await updater.update("local")).status == "updated"
        feed.write_text(CUT, encoding="utf-8")
        assert (await updater.update("local")).status == "held"
        await sign_in(page, bot, base)
        await page.get_by_role("navigation", name="Console").get_by_role("link", name="Feeds").click()
        row = page.locator("tbody tr").filter(has_text="local").first
        await expect(row.locator(".health-bad")).to_have_text("held")
        await expect(row).to_contain_text("would drop 6 of 10 entries")
        await shot(page, "feeds-held")
        await row.get_by_role("button", name="Update local now").click()  # a plain update is held again
        await expect(page.get_by_role("status")).to_contain_text("Update of local started")
        await eventually(lambda: _attempts_done(bot))
        assert (await updater.registry.require("local")).entries == 10
        await page.goto(base + "/console/feeds")
        await page.locator("tbody tr").filter(has_text="local").first.get_by_role(
            "button", name="Accept the held update of local").click()
        await expect(page.get_by_role("status")).to_contain_text("Accepting the held update of local")
        await eventually(lambda: _entries(bot, 4))
        await page.goto(base + "/console/feeds")
        row = page.locator("tbody tr").filter(has_text="local").first
        await expect(row.locator(".health-ok")).to_have_text("current")
        await expect(row.get_by_role("button", name="Accept the held update of local")).to_have_count(0)
        audit = [(a["via"], a["action"], a["detail"]) for a in await bot.rows("audit_log")]
        assert audit == [("console", "feed.update", ""),
                         ("console", "feed.update.force", "10 entries before, 4 now")]
        assert page.problems == []


async def _entries(bot: BotHarness, n: int) -> bool:
    return (await bot.services.sources.updater.registry.require("local")).entries == n


async def _attempts_done(bot: BotHarness) -> bool:
    tasks = bot.app[_console_key()].tasks
    return "feed:local" in tasks and tasks["feed:local"].done()


def _console_key() -> Any:
    from console.state import CONSOLE

    return CONSOLE
