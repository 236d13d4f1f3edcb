"""Console pages over HTTP on the seed scenario: filters done in the store, the incident's actions,
Allow/Block, Verdicts, Clicks exports, Audit."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from console.clicks import _cell
from shared.config import Settings
from tests.console_rig import signed_in
from tests.teams_standin import BotHarness, TeamsStandIn, running_bot
from tests.test_alerts_seed import PHISH, _count, eventually, mail, play_seed, seed_settings, standin

__all__ = ["mail", "seed_settings", "standin"]  # fixtures shared with the seed scenario's tests
CLICKED = "User clicked a malicious link in Teams chat"
THROUGH = "A user clicked through to a potentially malicious URL"


async def changes(bot: BotHarness) -> list[dict[str, Any]]:
    """The audit log after the seed (whose admin said "alerts here" in the security channel)."""
    rows = await bot.rows("audit_log")
    assert rows and rows[0]["action"] == "bot.security_channel"
    return rows[1:]


@pytest.fixture
async def seeded(seed_settings: Settings, standin: TeamsStandIn) -> AsyncIterator[tuple[BotHarness, str]]:
    async with running_bot(seed_settings) as bot:
        await play_seed(bot, standin)
        await eventually(lambda: _count(bot, 2))
        csrf = await signed_in(bot.client, bot.app)
        yield bot, csrf


def titles(html: str) -> set[str]:
    return {t for t in (CLICKED, THROUGH) if f">{t}</a>" in html}


@pytest.mark.parametrize(("query", "expected"), [
    ({}, {CLICKED, THROUGH}),
    ({"status": "new"}, {CLICKED, THROUGH}),
    ({"status": "resolved"}, set()),
    ({"severity": "High"}, {CLICKED, THROUGH}),
    ({"severity": "low"}, set()),
    ({"title": "CLICKED THROUGH"}, {THROUGH}),
    ({"user": "Bob2@Contoso.example"}, {CLICKED, THROUGH}),
    ({"user": "alice1@contoso.example"}, set()),
    ({"url": "contoso-phish.com/RESET"}, {CLICKED, THROUGH}),
    ({"url": "100%_"}, set()),  # LIKE wildcards are taken literally
    ({"since": "1h"}, {CLICKED, THROUGH}),
    ({"until": "2020-01-01"}, set()),
])
async def test_alerts_filter(seeded: tuple[BotHarness, str], query: dict[str, str], expected: set[str]) -> None:
    """The alerts list filters by status, severity, title, user, URL and time, any case."""
    bot, _ = seeded
    response = await bot.client.get("/console/alerts", params=query)
    assert response.status == 200
    assert titles(await response.text()) == expected


@pytest.mark.parametrize(("path", "query", "reason"), [
    ("/console/alerts", {"since": "yesterday"}, "since: use a duration"),
    ("/console/alerts", {"severity": "urgent"}, "severity must be one of"),
    ("/console/incidents", {"status": "open"}, "status must be one of"),
    ("/console/alerts", {"page": "0"}, "page must be a whole number"),
    ("/console/clicks", {"clicked_through": "maybe"}, "clicked_through must be true or false"),
    ("/console/audit", {"via": "fax"}, "via must be one of"),
])
async def test_bad_filters_are_refused_with_the_reason(seeded: tuple[BotHarness, str], path: str,
                                                       query: dict[str, str], reason: str) -> None:
    """A filter value the console cannot use is answered 400 with what is wrong."""
    bot, _ = seeded
    response = await bot.client.get(path, params=query)
    assert response.status == 400
    assert reason in await response.text()


@pytest.mark.parametrize(("query", "found"), [
    ({"user": "bob2@contoso.example"}, True), ({"user": "alice1@contoso.example"}, False),
    ({"title": "Malicious URL"}, True), ({"url": "phish"}, True), ({"url": "example.org"}, False),
    ({"status": "active", "severity": "high"}, True), ({"status": "resolved"}, False),
])
async def test_incidents_filter(seeded: tuple[BotHarness, str], query: dict[str, str], found: bool) -> None:
    """The incidents list filters by its alerts' user and URL as well as its own fields."""
    bot, _ = seeded
    html = await (await bot.client.get("/console/incidents", params=query)).text()
    assert ("Malicious URL clicked in Teams by 1 user</a>" in html) is found


async def test_incident_actions_change_it_and_are_audited(seeded: tuple[BotHarness, str]) -> None:
    """Assign, classify and resolve from the incident page change the incident and its alerts, each audited."""
    bot, csrf = seeded
    for form in ({"do": "assign", "assigned_to": "Sam Analyst"},
                 {"do": "classify", "classification": "truePositive"},
                 {"do": "resolve", "comment": "user reset their password"}):
        response = await bot.client.post("/console/incidents/1", data={"csrf": csrf, **form},
                                          allow_redirects=False)
        assert response.status == 303, await response.text()
    incident = (await bot.rows("incidents"))[0]
    assert (incident["status"], incident["classification"], incident["assigned_to"]) == (
        "resolved", "truePositive", "Sam Analyst")
    assert {a["status"] for a in await bot.rows("alerts")} == {"resolved"}
    assert [(a["via"], a["action"], a["detail"]) for a in await changes(bot)] == [
        ("console", "incident.status", "inProgress"), ("console", "incident.assignedTo", "Sam Analyst"),
        ("console", "incident.classification", "truePositive"), ("console", "incident.status", "resolved"),
        ("console", "incident.comment", "user reset their password")]
    page = await (await bot.client.get("/console/incidents/1")).text()
    assert "Local administrator set assignedTo: Sam Analyst" in page


async def test_a_bad_incident_action_is_refused_with_the_reason(seeded: tuple[BotHarness, str]) -> None:
    """An unknown classification is refused on the incident page with the reason; nothing changes."""
    bot, csrf = seeded
    response = await bot.client.post("/console/incidents/1",
                                      data={"csrf": csrf, "do": "classify", "classification": "spicy"})
    assert response.status == 400
    assert "classification" in await response.text()
    assert (await bot.rows("incidents"))[0]["classification"] == "unknown"
    assert await changes(bot) == []


async def test_allow_url_from_the_incident_resolves_its_alert(seeded: tuple[BotHarness, str]) -> None:
    """Allow URL on an alert puts its URL on the allow list and resolves the alert as a false positive."""
    bot, csrf = seeded
    response = await bot.client.post("/console/incidents/1", data={"csrf": csrf, "do": "allow", "alert_id": "1"},
                                      allow_redirects=False)
    assert response.status == 303
    assert [(e["value"], e["action"]) for e in await bot.rows("tabl_entries")] == [
        ("login.contoso-phish.com/reset", "allow")]
    alert = next(a for a in await bot.rows("alerts") if a["id"] == 1)
    assert (alert["status"], alert["classification"]) == ("resolved", "falsePositive")


@pytest.mark.parametrize(("entry", "action", "expiry", "reason"), [
    ("test.pdf", "block", "30d", "test.pdf"),
    ("contoso.com:8080", "block", "30d", "port"),
    ("*.contoso.com", "allow", "30d", ""),
    ("contoso.com", "allow", "90d", "at most 30 days"),
    ("", "block", "30d", "enter a URL"),
])
async def test_invalid_entries_are_refused_next_to_the_field(seeded: tuple[BotHarness, str], entry: str,
                                                              action: str, expiry: str, reason: str) -> None:
    """An entry Defender would refuse is refused with its reason beside the field; the text typed stays."""
    bot, csrf = seeded
    response = await bot.client.post("/console/lists", data={"csrf": csrf, "value": entry, "action": action,
                                                             "expiry": expiry})
    html = await response.text()
    assert response.status == 400
    error = re.search(r'<p id="entry-error" class="field-error" role="alert">([^<]*)</p>', html)
    assert error is not None and reason in error.group(1)
    assert 'aria-invalid="true"' in html and f'value="{entry}"' in html
    assert await bot.rows("tabl_entries") == []


async def test_remove_an_entry(seeded: tuple[BotHarness, str]) -> None:
    """An entry can be removed; both the addition and the removal are audited."""
    bot, csrf = seeded
    await bot.client.post("/console/lists", data={"csrf": csrf, "value": "contoso-phish.com", "action": "block",
                                                  "expiry": "never", "notes": "n"})
    html = await (await bot.client.get("/console/lists")).text()
    assert "contoso-phish.com" in html and "never" in html
    response = await bot.client.post("/console/lists/remove", data={"csrf": csrf, "value": "contoso-phish.com",
                                                                    "action": "block"}, allow_redirects=False)
    assert response.status == 303
    assert await bot.rows("tabl_entries") == []
    assert [a["action"] for a in await changes(bot)] == ["tabl.block", "tabl.block.remove"]


async def test_check_a_url_shows_verdict_source_policy_and_entry(seeded: tuple[BotHarness, str]) -> None:
    """Check a URL tells the verdict, its source and reasons, the policy applied and the list entry."""
    bot, csrf = seeded
    html = await (await bot.client.get("/console/verdicts", params={"check": PHISH,
                                                                    "user": "bob2@contoso.example"})).text()
    assert "<strong>malicious</strong> from admin" in html and "credential phishing kit" in html
    assert "<strong>ClickBlocked</strong>" in html and "Staff" in html and "none applies" in html
    await bot.client.post("/console/lists", data={"csrf": csrf, "value": "contoso-phish.com", "action": "block",
                                                  "expiry": "30d"})
    html = await (await bot.client.get("/console/verdicts", params={"check": PHISH})).text()
    assert "<code>contoso-phish.com</code> (block)" in html and "<strong>ClickBlockedByTenantPolicy</strong>" in html
    bad = await bot.client.get("/console/verdicts", params={"check": "http://[::1"})
    assert bad.status == 400 and "cannot check this URL" in await bad.text()


async def test_set_and_clear_an_admin_verdict(seeded: tuple[BotHarness, str]) -> None:
    """A verdict set from the form applies at once and is audited; Clear takes it away."""
    bot, csrf = seeded
    response = await bot.client.post("/console/verdicts", data={
        "csrf": csrf, "do": "set", "target": "files.contoso-share.com", "verdict": "malicious",
        "threats": "Malware", "reason": "payload confirmed"}, allow_redirects=False)
    assert response.status == 303
    shown = await (await bot.client.get(response.headers["Location"])).text()
    assert "Verdict on files.contoso-share.com set to malicious." in shown
    check = await bot.services.verdicts.check("https://files.contoso-share.com/invoice.zip")
    assert check.verdict.value == "malicious"
    await bot.client.post("/console/verdicts", data={"csrf": csrf, "do": "clear",
                                                     "target": "files.contoso-share.com"})
    check = await bot.services.verdicts.check("https://files.contoso-share.com/invoice.zip")
    assert check.verdict.value != "malicious"
    assert [(a["action"], a["target"]) for a in await changes(bot)] == [
        ("verdict.malicious", "files.contoso-share.com/"), ("verdict.clear", "files.contoso-share.com/")]


async def test_clicks_explorer_filters_and_exports(seeded: tuple[BotHarness, str]) -> None:
    """The Clicks page filters in the store; CSV and JSON-lines exports hold the filtered set."""
    bot, _ = seeded
    html = await (await bot.client.get("/console/clicks", params={"clicked_through": "true"})).text()
    assert html.count("<td>true</td>") == 1 and "<td>false</td>" not in html
    lines = await (await bot.client.get("/console/clicks/export.jsonl", params={"user": "bob2@contoso.example"})).text()
    records = [json.loads(line) for line in lines.splitlines()]
    assert [r["IsClickedThrough"] for r in records] == [False, True]
    assert {r["Url"] for r in records} == {PHISH}
    response = await bot.client.get("/console/clicks/export.csv", params={"action_type": "ClickBlocked"})
    assert response.headers["Content-Disposition"] == 'attachment; filename="clicks.csv"'
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert len(rows) == 2 and rows[0]["Timestamp"] and rows[1]["IsClickedThrough"] == "true"
    none = await (await bot.client.get("/console/clicks/export.csv", params={"user": "nobody@x.example"})).text()
    assert none.count("\n") == 1  # the header only


@pytest.mark.parametrize(("value", "cell"), [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"),
    ("bob@contoso.example", "bob@contoso.example"), (True, "true"), (["a", "b"], '["a", "b"]'),
])
def test_csv_cells_never_start_a_formula(value: Any, cell: str) -> None:
    """A CSV cell that a spreadsheet would run as a formula is written as text."""
    assert _cell(value) == cell


async def test_export_as_graph_json(seeded: tuple[BotHarness, str]) -> None:
    """An incident and an alert download in Microsoft Graph's shapes."""
    bot, _ = seeded
    incident = await (await bot.client.get("/console/incidents/1/export")).json(content_type=None)
    assert incident["displayName"] == "Malicious URL clicked in Teams by 1 user" and len(incident["alerts"]) == 2
    alert = await (await bot.client.get("/console/alerts/1/export")).json(content_type=None)
    assert alert["@odata.type"] == "#microsoft.graph.security.alert"
    assert (alert["id"], alert["incidentId"]) == ("1", "1") and alert["title"] in (CLICKED, THROUGH)


@pytest.mark.parametrize(("user", "policy", "why"), [
    ("bob2@contoso.example", "Staff", "rule &#39;Staff&#39; (priority 0): recipient domain is contoso.example"),
    ("eve@fabrikam.example", "Built-in protection", "no rule matched"),
])
async def test_which_policy_applies_to_a_user(seeded: tuple[BotHarness, str], user: str, policy: str,
                                              why: str) -> None:
    """The Policies page names the policy a user gets and the rule (or its absence) that decided it."""
    bot, _ = seeded
    html = await (await bot.client.get("/console/policies", params={"user": user})).text()
    found = re.search(r'role="status"><strong>[^<]+</strong> gets <strong>([^<]+)</strong>: ([^<]+)</p>', html)
    assert found is not None and found.group(1) == policy and why in found.group(2)
    assert "<h3>Staff</h3>" in html and "EnableSafeLinksForTeams" in html


async def test_feed_update_now_is_started_and_audited(seeded: tuple[BotHarness, str], tmp_path: Any) -> None:
    """Update now starts the feed's update; the page then shows its entries; the request is audited."""
    from shared.store.feeds import FeedSpec

    bot, csrf = seeded
    feed = tmp_path / "blocklist.txt"
    feed.write_text("bad.contoso-phish.com\nmalware.fabrikam.example/payload\n", encoding="utf-8")
    await bot.services.sources.updater.registry.add(FeedSpec("local", str(feed), "plain", None, 3600.0, True),
                                                    now=0.0)
    response = await bot.client.post("/console/feeds/update", data={"csrf": csrf, "name": "local"},
                                      allow_redirects=False)
    assert response.status == 303
    await eventually(lambda: _entries(bot, "local", 2))
    html = await (await bot.client.get("/console/feeds")).text()
    assert "<strong>local</strong>" in html and '<span class="health-ok">current</span>' in html
    assert [(a["action"], a["target"]) for a in await changes(bot)] == [("feed.update", "local")]
    unknown = await bot.client.post("/console/feeds/update", data={"csrf": csrf, "name": "nope"})
    assert unknown.status == 404


async def _entries(bot: BotHarness, name: str, n: int) -> bool:
    row = await bot.services.db.fetchone("SELECT entries FROM feeds WHERE name = ?", (name,))
    return bool(row and row["entries"] >= n)


async def test_overview_counts_the_week(seeded: tuple[BotHarness, str]) -> None:
    """The Overview's charts count the seed's clicks by ActionType and its alerts by severity; the open
    incident and the health of the database, outbox and bot are shown."""
    bot, _ = seeded
    html = await (await bot.client.get("/console/")).text()
    assert '<title id="clicks-t">Clicks per hour by ActionType, last 7 days: 2 in all' in html
    assert '<title id="alerts-t">Alerts per day by severity, last 7 days: 2 in all' in html
    assert "<tr><td>ClickBlocked</td><td>2</td></tr>" in html
    assert "#1 Malicious URL clicked in Teams by 1 user</a>" in html
    for name in ("Database: healthy", "Outbox: ", "Bot: healthy"):
        assert name in html


def test_chart_series_differ_by_more_than_colour() -> None:
    """Every chart series has its own fill pattern, so the charts read without colour."""
    from console.overview import CLICK_SERIES, SEVERITY_SERIES

    for series in (CLICK_SERIES, SEVERITY_SERIES):
        assert len({s.pattern for s in series}) == len(series)


async def test_the_demo_is_refused_once_alerts_exist(seeded: tuple[BotHarness, str]) -> None:
    """The demo message is only for a fresh install: with alerts stored it is refused and nothing is added."""
    bot, csrf = seeded
    before = len(await bot.rows("teams_messages"))
    response = await bot.client.post("/console/demo", data={"csrf": csrf})
    assert response.status == 409
    assert len(await bot.rows("teams_messages")) == before
    assert "Post a demo message" not in await (await bot.client.get("/console/")).text()
