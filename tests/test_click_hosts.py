"""How a click's URL is read: the gate on clicks posted through the API, and the click log's host index."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from safelinks.server import create_app
from shared.alerts.ingest import ClickRecordError, click_from_record
from shared.alerts.lookback import expression_host
from shared.clicks import ActionType, Click, Workload, reversed_host
from shared.config import Settings
from shared.store import open_database
from shared.store.clicks import HOST_BATCH, INSERT_CLICK, ClickStore, click_row, url_rhost
from shared.store.migrations import migrate, pending
from shared.urls import InvalidURL, expressions, parse
from shared.verdicts import Verdict
from tests.conftest import FakeClock
from tests.proxy_fixtures import Proxy
from tests.waiting import eventually

WPT = Path(__file__).parent / "data" / "wpt-url"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
_NOT_WRITTEN = "is not an http or https URL written scheme://host"
_NOT_A_URL = "is not a URL"


@pytest.mark.parametrize(
    ("url", "outcome"),
    [
        ("https://a.contoso.com/x", "https://a.contoso.com/x"),
        ("https://a.contoso.com", "https://a.contoso.com"),
        ("HTTP://A.Contoso.COM./x", "HTTP://A.Contoso.COM./x"),
        ("http://user@a.contoso.com:8080/", "http://user@a.contoso.com:8080/"),
        ("http://%61.contoso.com/", "http://%61.contoso.com/"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("http://a.contoso.com\\x", "http://a.contoso.com\\x"),
        (" http://a.contoso.com/", " http://a.contoso.com/"),
        # Written without "scheme://host": a browser would make a link of some, a record may not.
        ("example.com/x", _NOT_WRITTEN),
        ("//a.contoso.com/x", _NOT_WRITTEN),
        ("http:example.com", _NOT_WRITTEN),
        ("http:///example.com", _NOT_WRITTEN),
        ("http://[::1/", _NOT_WRITTEN),
        ("http://[zz]/", _NOT_WRITTEN),
        ("mailto:a@contoso.com", _NOT_WRITTEN),
        ("javascript:alert(1)", _NOT_WRITTEN),
        ("ftp://files.contoso.com/a", _NOT_WRITTEN),
        # Written well, refused by the URL model: not what a browser opens.
        ("http://a b.com/", _NOT_A_URL),
        ("http://a.com:99999/", _NOT_A_URL),
        ("http://./", _NOT_A_URL),
    ],
)
def test_a_posted_url_is_kept_as_sent_or_refused(url: str, outcome: str) -> None:
    """A posted Url must be written scheme://host and be http(s) to the URL model; it is kept as sent."""
    record = {"Url": url, "Timestamp": "2026-11-01T12:00:00Z"}
    if outcome.startswith("is not"):
        with pytest.raises(ClickRecordError) as refused:
            click_from_record(record)
        assert str(refused.value).startswith(f"click #1: Url {url!r} {outcome}")
    else:
        assert click_from_record(record).url == outcome


@pytest.mark.parametrize(
    ("url", "rhost"),
    [
        # The host a browser opens, in the form the lookup expressions use (canonical, reversed).
        ("https://www.example.com/a", "moc.elpmaxe.www"),
        ("http://example.com./", "moc.elpmaxe"),
        ("http://a..b.example../", "elpmaxe.b.a"),
        ("https://user:pw@xn--bcher-kva.example:8443/", "elpmaxe.avk-rehcb--nx"),
        ("http://127.0.0.1:8080/", "1.0.0.721"),
        ("https://[::1]/", "]1::["),
        ("http://[::1]:8080/x", "]1::["),
        ("https://[2001:DB8::1]/", "]1::8bd:1002["),
        ("https://[::ffff:5db8:d822]/", "43.612.481.39"),
        # As a gateway sent it, read as the browser reads it: the text itself is kept as sent.
        ("https://a.contoso.com", "moc.osotnoc.a"),
        ("HTTP://WWW.Example.COM./x", "moc.elpmaxe.www"),
        ("http://%61.contoso.com/", "moc.osotnoc.a"),
        ("http://bücher.example/", "elpmaxe.avk-rehcb--nx"),
        ("http://0x7f.1/", "1.0.0.721"),
        ("http://a.contoso.com\\x", "moc.osotnoc.a"),
        (" http://a.contoso.com/", "moc.osotnoc.a"),
        # Refused by the URL model (only rows stored before the gate): no host a browser opens, none indexed.
        ("ftp://files.contoso.com/a", ""),
        ("http://a b.com/", ""),
        ("http://[::1/", ""),
        ("not a url", ""),
    ],
)
def test_click_log_host_index_table(url: str, rhost: str) -> None:
    """The click log indexes a URL by the host a browser opens, canonical and reversed; none when refused."""
    assert url_rhost(url) == rhost


def _urls() -> list[str]:
    """The URL Standard's test inputs and IDNA hosts, as written and as serialised."""
    texts = []
    for row in json.loads((WPT / "urltestdata.json").read_text(encoding="utf-8")):
        if isinstance(row, dict):
            texts += [row["input"], row.get("href") or ""]
    for row in json.loads((WPT / "toascii.json").read_text(encoding="utf-8")):
        if isinstance(row, dict):
            texts += [f"http://{row['input']}/", f"https://u:p@{row['input']}:8080/p?q#f"]
    found = set(texts)
    for text in texts:
        try:
            found.add(parse(text).href)
        except InvalidURL:
            continue
    return sorted(found)


def test_every_url_is_indexed_where_its_expressions_look() -> None:
    """Every URL an expression can cover is indexed by the look-back's key for its most specific expression."""
    keyed = 0
    for text in _urls():
        try:
            expression = expressions(text)[0]
        except InvalidURL:
            continue
        keyed += 1
        assert url_rhost(text) == reversed_host(expression_host(expression)), text
    assert keyed > 500


TOKEN = "t0ken-for-tests-0123456789abcdefgh"
LOOKBACK_TITLE = "A potentially malicious URL click was detected"


@pytest.fixture
async def served(make_settings: Callable[..., Settings], db_url: str, aiohttp_client: Any) -> Proxy:
    """The whole service (proxy, API, alert engine) on a real server, its store on each backend."""
    settings = make_settings(database_url=db_url, api_tokens=TOKEN)
    return Proxy(await aiohttp_client(create_app(settings, role="all", clock=FakeClock())))


async def _lookback_alert_urls(served: Proxy, verdict_on: str) -> list[str]:
    """Set ``verdict_on`` malicious now and wait for the look-back's alerts: the URLs of their clicks."""
    now = served.services.clock().timestamp()
    await served.services.admin_verdicts.set(verdict_on, Verdict.MALICIOUS, reason="phishing kit", now=now)

    async def raised() -> list[dict[str, Any]]:
        async with served.client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            return [a for a in (await r.json())["value"] if a["title"] == LOOKBACK_TITLE]

    alerts = await eventually(raised)
    return [e["url"] for a in alerts for e in a["evidence"] if e["@odata.type"].endswith("urlEvidence")]


@pytest.mark.parametrize(
    ("link", "verdict_on"),
    [
        ("http://[2001:db8::1]/x", "[2001:db8::1]"),
        ("http://[2001:DB8:0::1]:8080/x", "http://[2001:db8::1]/"),
        ("http://[::ffff:93.184.216.34]/", "93.184.216.34"),
    ],
)
async def test_a_verdict_on_an_ipv6_host_finds_the_clicks_on_it(served: Proxy, link: str, verdict_on: str) -> None:
    """A verdict turning malicious on an IPv6 address (or the IPv4 one it carries) alerts the clicks before it."""
    await served.click(served.link(link))
    [click] = await served.stored()
    assert await _lookback_alert_urls(served, verdict_on) == [click.url]


@pytest.mark.parametrize(
    ("url", "verdict_on"),
    [
        ("http://%61.contoso.com/signin", "a.contoso.com"),
        ("http://bücher.example/", "bücher.example"),
        ("http://0x7f.1/admin", "127.0.0.1/admin"),
        ("HTTP://Login.Contoso-Phish.COM./x", "login.contoso-phish.com"),
    ],
)
async def test_a_verdict_finds_ingested_clicks_on_the_host_a_browser_opens(served: Proxy, url: str,
                                                                          verdict_on: str) -> None:
    """A click posted as a gateway wrote it is found by a verdict on the host a browser reads there."""
    at = served.services.clock() - timedelta(hours=1)
    record = {"Url": url, "Timestamp": at.isoformat(), "ActionType": "ClickAllowed", "Verdict": "clean",
              "AccountUpn": "adele@contoso.com", "NetworkMessageId": "nm-1", "ReportId": "gw-1"}
    async with served.client.post("/api/v1/clicks", json=record, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
        assert r.status == 202 and (await r.json())["accepted"] == 1
    assert await _lookback_alert_urls(served, verdict_on) == [url]


OLD_INDEX = [
    # (URL, as indexed before, as indexed now)
    ("https://[::1]/", "1::", "]1::["),
    ("https://[::ffff:5db8:d822]/", "228d:8bd5:ffff::", "43.612.481.39"),
    ("http://%61.contoso.com/", "moc.osotnoc.16%", "moc.osotnoc.a"),
    ("http://bücher.example/", "elpmaxe.rehcüb", "elpmaxe.avk-rehcb--nx"),
    ("http://0x7f.1/", "1.f7x0", "1.0.0.721"),
    ("https://www.example.com/a", "moc.elpmaxe.www", "moc.elpmaxe.www"),
    ("http://[::1/", "", ""),
]


async def test_migration_0016_reindexes_stored_clicks(db_url: str) -> None:
    """Migration 0016 gives every stored click the index of the host a browser opens, a batch at a time."""
    db = await open_database(db_url)
    try:
        rows = 2 * HOST_BATCH + len(OLD_INDEX)  # more than one batch
        clicks = [Click(report_id=f"r-{n}", timestamp=T0, url=OLD_INDEX[n % len(OLD_INDEX)][0],
                        action_type=ActionType.CLICK_ALLOWED, workload=Workload.TEAMS, verdict="clean")
                  for n in range(rows)]
        await db.executemany(INSERT_CLICK, [click_row(c) for c in clicks])
        for url, before, _ in OLD_INDEX:
            await db.execute("UPDATE clicks SET url_rhost = ? WHERE url = ?", (before, url))
        await db.execute("DELETE FROM schema_migrations WHERE version = 16")
        assert await pending(db) == [(16, "0016_click_hosts.py")]
        assert await migrate(db) == [16]
        found = await db.fetchall("SELECT url, url_rhost, COUNT(*) AS n FROM clicks GROUP BY url, url_rhost")
        expected = {(url, after, rows // len(OLD_INDEX) + (n < rows % len(OLD_INDEX)))
                    for n, (url, _, after) in enumerate(OLD_INDEX)}
        assert {(r["url"], r["url_rhost"], int(r["n"])) for r in found} == expected
        assert await pending(db) == []
        assert await ClickStore(db).reindex_hosts() == 0  # run again (as after an interruption): nothing moves
    finally:
        await db.close()
