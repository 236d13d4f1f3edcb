"""The console in a real browser (Chromium driven by Playwright): the seed scenario's story, found and acted on.

Skipped, saying why, where Playwright or Chromium is missing. Set CONSOLE_SCREENSHOTS=DIR to keep
screenshots of the pages it visits (the README's come from here).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings
from tests.conftest import BROWSER_UA
from tests.console_rig import CHROMIUM, CHROMIUM_ARGS, browser_missing, free_port, sign_in_link
from tests.smtp_server import Mailbox
from tests.teams_standin import BotHarness, TeamsStandIn, running_bot
from tests.test_alerts_seed import PHISH, POLICIES, SOC, TOKEN, _count, eventually, mail, play_seed, standin

pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))
__all__ = ["mail", "standin"]  # fixtures shared with the seed scenario's tests
SHOTS = os.environ.get("CONSOLE_SCREENSHOTS")


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def console_settings(make_settings: Callable[..., Settings], standin: TeamsStandIn, mail: tuple[Mailbox, int],
                     tmp_path: Path, port: int) -> Settings:
    policy = tmp_path / "policies.yaml"
    policy.write_text(POLICIES, encoding="utf-8")
    return make_settings(policy_file=policy, admins=SOC["aadObjectId"], api_tokens=TOKEN,
                         public_url=f"http://127.0.0.1:{port}", smtp_host="127.0.0.1", smtp_port=mail[1],
                         smtp_security="none", alert_email_to="soc@contoso.example", **standin.bot_settings())


@pytest.fixture
async def seeded(console_settings: Settings, standin: TeamsStandIn, port: int) -> AsyncIterator[tuple[BotHarness, str]]:
    async with running_bot(console_settings, port=port) as bot:
        link = await play_seed(bot, standin)
        await eventually(lambda: _count(bot, 2))
        yield bot, link


@pytest.fixture
async def page(port: int) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        # A headless browser announces itself; the proxy rightly takes that for a robot, not a person.
        context = await browser.new_context(user_agent=BROWSER_UA, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(8000)
        page = await context.new_page()
        page.problems = []
        # A page answered 400 or 403 on purpose is logged by Chromium as a failed load: documents are
        # judged by the test's own checks, every other resource (style, script, icon) must load.
        page.on("console", lambda m: page.problems.append(m.text)
                if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        page.on("response", lambda r: page.problems.append(f"{r.status} {r.url}")
                if r.status >= 400 and r.request.resource_type != "document" else None)
        # A load cut short by the test moving on to the next page is not a failure of the page.
        page.on("requestfailed", lambda r: page.problems.append(f"failed {r.url}: {r.failure}")
                if r.failure != "net::ERR_ABORTED" else None)
        try:
            yield page
        finally:
            await browser.close()


async def shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(SHOTS) / f"console-{name}.png"), full_page=True)


async def test_an_analyst_follows_the_seed_incident_and_blocks_its_url(seeded: tuple[BotHarness, str],
                                                                        page: Any, port: int) -> None:
    """Sign in with the one-time link, find both seed alerts, read the incident's story (message and both
    clicks), block the URL from the form and see the next click blocked, sign out; no browser errors."""
    from playwright.async_api import expect

    bot, wrapped = seeded
    base = f"http://127.0.0.1:{port}"
    link = base + await sign_in_link(bot.app)
    await page.goto(link)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    await expect(page.get_by_role("link", name="Overview")).to_have_attribute("aria-current", "page")
    await shot(page, "overview")

    # From the keyboard: the first Tab reaches "Skip to content", which moves focus to the page's content.
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("main")).to_be_focused()

    await page.get_by_role("navigation", name="Console").get_by_role("link", name="Alerts").click()
    for title in ("User clicked a malicious link in Teams chat",
                  "A user clicked through to a potentially malicious URL"):
        await expect(page.get_by_role("link", name=title)).to_be_visible()
    await shot(page, "alerts")

    await page.get_by_role("link", name="User clicked a malicious link in Teams chat").click()
    await expect(page.get_by_role("heading", name="Malicious URL clicked in Teams by 1 user")).to_be_visible()
    story = page.locator("ol.story")
    await expect(story.get_by_role("heading", name="Teams message posted")).to_be_visible()
    await expect(story.get_by_text(f"please reset: {PHISH}")).to_be_visible()
    clicks = story.locator("li.step-click")
    await expect(clicks).to_have_count(2)
    await expect(clicks.nth(1)).to_contain_text("clicked through the warning")
    await expect(clicks.nth(0)).to_contain_text("bob2@contoso.example")
    await shot(page, "incident")

    await page.get_by_role("link", name="Allow/Block").click()
    await page.get_by_label("URL or pattern").fill("test.pdf")
    await page.get_by_role("button", name="Block", exact=True).click()
    field = page.get_by_label("URL or pattern")
    await expect(field).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#entry-error")).to_contain_text("test.pdf")
    await expect(field).to_have_value("test.pdf")  # what was typed stays, to be corrected
    await shot(page, "allow-block-refused")

    await field.fill("contoso-phish.com")
    await page.get_by_label("Notes").fill("seed scenario phish")
    await page.get_by_role("button", name="Block", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text("contoso-phish.com blocked.")
    await expect(page.locator("table").get_by_text("seed scenario phish")).to_be_visible()
    await shot(page, "allow-block")

    # A form whose CSRF token is not the session's (as a forged cross-site form would be) changes nothing.
    await field.fill("forged.contoso-phish.com")
    await page.locator("form.entry-form input[name=csrf]").evaluate("input => { input.value = 'forged' }")
    await page.get_by_role("button", name="Block", exact=True).click()
    await expect(page.get_by_role("heading", name="Form expired")).to_be_visible()
    assert [e["value"] for e in await bot.rows("tabl_entries")] == ["contoso-phish.com"]

    # The next click on the seed's link is blocked by the tenant's list.
    await page.goto(base + wrapped)
    latest = await bot.services.db.fetchone("SELECT action_type FROM clicks ORDER BY id DESC LIMIT 1")
    assert latest["action_type"] == "ClickBlockedByTenantPolicy"

    await page.goto(f"{base}/console/verdicts?check={PHISH}&user=bob2@contoso.example")
    await expect(page.get_by_role("region", name="Result")).to_contain_text("ClickBlockedByTenantPolicy")
    await shot(page, "verdicts")
    await page.goto(base + "/console/audit")
    await expect(page.get_by_text("tabl.block")).to_be_visible()
    await shot(page, "audit")

    # A narrow window (a phone): the navigation wraps, wide tables scroll in their own box, the page does not.
    await page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/console/", "/console/alerts", "/console/incidents/1", "/console/lists"):
        await page.goto(base + path)
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390, path
    await expect(page.get_by_role("navigation", name="Console").get_by_role("link", name="Audit")).to_be_visible()
    await page.goto(base + "/console/incidents/1")
    await shot(page, "narrow")
    await page.set_viewport_size({"width": 1280, "height": 900})
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_text("You are signed out.")).to_be_visible()
    await page.goto(base + "/console/alerts")
    await expect(page).to_have_url(base + "/console/signin")

    # The same link again: no session.
    await page.goto(link)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("already used or expired")
    await page.goto(base + "/console/alerts")
    await expect(page).to_have_url(base + "/console/signin")
    assert page.problems == []


@pytest.fixture
async def fresh(make_settings: Callable[..., Settings], port: int) -> AsyncIterator[BotHarness]:
    async with running_bot(make_settings(public_url=f"http://127.0.0.1:{port}"), port=port) as bot:
        yield bot


async def test_a_newcomer_plays_the_demo_and_finds_its_story(fresh: BotHarness, page: Any, port: int) -> None:
    """On a fresh install the Overview offers the demo; its message, clicked through the real warning page,
    becomes an incident whose story shows the message and both clicks."""
    from playwright.async_api import expect

    base = f"http://127.0.0.1:{port}"
    await page.goto(base + await sign_in_link(fresh.app))
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("button", name="Post a demo message").click()
    await expect(page.get_by_role("heading", name="The demo scenario")).to_be_visible()
    link = await page.get_by_role("link", name="Reset password (wrapped link)").get_attribute("href")
    assert link is not None and link.startswith(base + "/v1/url?")

    await page.goto(link)
    await page.get_by_role("button", name="Continue anyway (not recommended)").click()
    # The browser goes on to the target: a .invalid host, which ends on Chromium's error page.
    await page.wait_for_url(lambda url: not url.startswith(base))
    clicks = await fresh.services.db.fetchall("SELECT is_clicked_through FROM clicks ORDER BY id")
    assert [bool(c["is_clicked_through"]) for c in clicks] == [False, True]

    await eventually(lambda: _stored_alerts(fresh, 2))
    await page.goto(base + "/console/incidents")
    await page.get_by_role("link", name="Malicious URL clicked in Teams by 1 user").click()
    story = page.locator("ol.story")
    await expect(story.get_by_text("Your password expires today")).to_be_visible()
    await expect(story.locator("li.step-click")).to_have_count(2)
    await page.goto(base + "/console/")
    await expect(page.get_by_role("button", name="Post a demo message")).to_have_count(0)  # offered once only
    # "Continue anyway" really leaves: the browser went on to the target (a .invalid host, which cannot
    # resolve) instead of holding the redirect against the warning page's CSP.
    assert any(p.startswith("failed http://") and ".invalid" in p and "ERR_NAME_NOT_RESOLVED" in p
               for p in page.problems), page.problems
    assert [p for p in page.problems if ".invalid" not in p] == []


async def _stored_alerts(bot: BotHarness, n: int) -> bool:
    return len(await bot.rows("alerts")) >= n
