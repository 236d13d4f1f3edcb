"""The console's store queries on both backends: links and sessions, the audit log, click pages and counts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from console.sessions import Role, Sessions, SignInLinks
from shared.alerts.actions import Actor
from shared.clicks import ActionType, Click, Workload
from shared.store import Database, open_database
from shared.store.audit import AuditFilter, AuditLog, record
from shared.store.clicks import ClickFilter, ClickStore

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await open_database(db_url)
    yield database
    await database.close()


async def test_a_link_is_spent_once_and_sessions_expire(db: Database) -> None:
    """A sign-in link gives one role once; a session is found until idle or past its limit, then not."""
    links = SignInLinks(db)
    token = await links.issue(now=T0.timestamp())
    assert await links.spend(token, now=T0.timestamp() + 1) is Role.ADMIN
    assert await links.spend(token, now=T0.timestamp() + 2) is None
    late = await links.issue(now=T0.timestamp())
    assert await links.spend(late, now=T0.timestamp() + 601) is None
    sessions = Sessions(db, idle_seconds=60, max_seconds=300)
    cookie, started = await sessions.start("u1", "User One", Role.READER, via="oidc", now=T0.timestamp())
    found = await sessions.find(cookie, now=T0.timestamp() + 50)
    assert found is not None and found.role is Role.READER and found.csrf == started.csrf
    assert await sessions.find(cookie, now=T0.timestamp() + 50 + 61) is None  # idle
    assert await sessions.find("not-a-session", now=T0.timestamp()) is None


async def test_audit_pages_and_filters(db: Database) -> None:
    """Audit rows page newest first and filter by actor (id or name, any case), way and action."""
    for n, (via, action) in enumerate([("console", "tabl.block"), ("cli", "verdict.malicious"),
                                       ("card", "alert.status")]):
        async with db.transaction() as tx:
            await record(tx, Actor(f"id-{n}", f"Name {n}", via=via), action, f"t{n}", at=T0.timestamp() + n)
    log = AuditLog(db)
    entries, more = await log.page(AuditFilter(top=2))
    assert [e.action for e in entries] == ["alert.status", "verdict.malicious"] and more
    assert [e.via for e in (await log.page(AuditFilter(actor="NAME 1")))[0]] == ["cli"]
    assert [e.target for e in (await log.page(AuditFilter(via="console")))[0]] == ["t0"]
    assert (await log.page(AuditFilter(since=T0 + timedelta(seconds=1), action="tabl.block")))[0] == []


def _click(n: int, action: ActionType, through: bool, upn: str) -> Click:
    return Click(report_id=f"r{n}", timestamp=T0 + timedelta(minutes=30 * n),
                 url=f"https://a{n % 2}.contoso.example/x",
                 action_type=action, workload=Workload.TEAMS, verdict="clean", account_upn=upn,
                 is_clicked_through=through)


async def test_click_pages_filter_in_the_store_and_count_by_hour(db: Database) -> None:
    """Click pages filter by ActionType, click-through and user, say whether more follow, and count per hour."""
    store = ClickStore(db)
    store.start()
    try:
        for n in range(6):
            action = ActionType.CLICK_BLOCKED if n % 3 == 0 else ActionType.CLICK_ALLOWED
            await store.record(_click(n, action, n == 3, "Bob@Contoso.example" if n < 4 else "eve@contoso.example"))
    finally:
        await store.close()
    page, more = await store.page(ClickFilter(), top=4)
    assert [c.report_id for c in page] == ["r5", "r4", "r3", "r2"] and more
    page, more = await store.page(ClickFilter(), top=4, skip=4)
    assert [c.report_id for c in page] == ["r1", "r0"] and not more
    blocked, _ = await store.page(ClickFilter(action_type="ClickBlocked"), top=10)
    assert [c.report_id for c in blocked] == ["r3", "r0"]
    through, _ = await store.page(ClickFilter(clicked_through=True), top=10)
    assert [c.report_id for c in through] == ["r3"]
    bob, _ = await store.page(ClickFilter(user="bob@contoso.example"), top=10)
    assert len(bob) == 4
    hour = int(T0.timestamp())
    assert sorted(await store.counts_by_hour(T0)) == [
        (hour, "ClickAllowed", 1), (hour, "ClickBlocked", 1), (hour + 3600, "ClickAllowed", 1),
        (hour + 3600, "ClickBlocked", 1), (hour + 7200, "ClickAllowed", 2)]
    on_url = await store.on_urls(["https://a1.contoso.example/x"], T0, T0 + timedelta(days=1))
    assert [c.report_id for c in on_url] == ["r1", "r3", "r5"]


async def test_admin_verdicts_page_newest_first_and_filter(db: Database) -> None:
    """Admin verdicts page newest first in the store, and filter by a text in the expression."""
    from shared.verdicts import Verdict
    from shared.verdicts.admin import AdminVerdicts

    verdicts = AdminVerdicts(db)
    for n, host in enumerate(["a.contoso.example", "b.fabrikam.example", "c.contoso.example"]):
        await verdicts.set(host, Verdict.MALICIOUS, now=T0.timestamp() + n)
    first, more = await verdicts.page(top=2)
    assert [v.expression for v in first] == ["c.contoso.example/", "b.fabrikam.example/"] and more
    rest, more = await verdicts.page(top=2, skip=2)
    assert [v.expression for v in rest] == ["a.contoso.example/"] and not more
    found, _ = await verdicts.page(contains="CONTOSO")
    assert [v.expression for v in found] == ["c.contoso.example/", "a.contoso.example/"]


async def test_alert_and_incident_filters_and_daily_counts(db: Database) -> None:
    """Alert and incident filters by title, user and URL (any case, LIKE wildcards literal) and the daily
    counts by severity give the same answers on both backends."""
    from shared.store.alerts import ALERT_COLUMNS, AlertFilter, AlertStore
    from shared.store.incidents import IncidentFilter, IncidentStore

    store, incidents = AlertStore(db), IncidentStore(db)
    async with db.transaction() as tx:
        first = await IncidentStore.create(tx, title="Malicious URL clicked", severity="high", at=T0.timestamp(),
                                           first_activity=T0.timestamp())
        for n, (title, upn, url, severity) in enumerate([
                ("User clicked a malicious link in Teams chat", "Bob@Contoso.example", "https://a.example/100%_off",
                 "high"),
                ("A user clicked through", "eve@contoso.example", "https://b.example/x", "medium")]):
            at = T0.timestamp() + n * 86400
            values = dict.fromkeys(ALERT_COLUMNS)
            values.update(alert_key=f"k{n}", rule_id="r", title=title, description="", recommended_actions="",
                          severity=severity, category="c", status="new", classification="unknown",
                          determination="unknown", incident_id=first if n == 0 else None, group_key="",
                          created_at=at, updated_at=at, first_activity=at, last_activity=at, event_count=1,
                          url=url, domain="", account_upn=upn, workload="Teams", report_id=str(n), evidence="[]",
                          details="{}", comments="[]")
            await store.insert(tx, values)

    async def titles(**flt: object) -> list[str]:
        return [a.title for a in (await store.page(AlertFilter(**flt)))[0]]

    assert await titles(title="CLICKED THROUGH") == ["A user clicked through"]
    assert await titles(user="bob@contoso.EXAMPLE") == ["User clicked a malicious link in Teams chat"]
    assert await titles(url="100%_") == ["User clicked a malicious link in Teams chat"]
    assert await titles(url="1000") == []  # "%" and "_" are not wildcards
    found, total = await incidents.page(IncidentFilter(user="BOB@contoso.example", url="a.example"))
    assert [i.id for i in found] == [first] and total == 1
    assert (await incidents.page(IncidentFilter(user="eve@contoso.example")))[1] == 0
    day = int(T0.timestamp()) // 86400 * 86400
    assert sorted(await store.counts_by_day(T0 - timedelta(hours=12))) == [
        (day, "high", 1), (day + 86400, "medium", 1)]


async def test_a_late_click_is_counted_in_its_hour_without_a_restart(db: Database) -> None:
    """A click stored after its hour was counted (a late write) shows in that hour at the next look."""
    from console.overview import HourlyClicks

    store, hourly = ClickStore(db), HourlyClicks()
    store.start()
    now = T0 + timedelta(hours=5, minutes=10)
    hour = int(T0.timestamp()) // 3600 * 3600
    await store.record(_click(0, ActionType.CLICK_BLOCKED, False, "bob@contoso.example"))

    def in_hour(found: list[tuple[int, dict[str, int]]]) -> dict[str, int]:
        return dict(found)[hour]

    assert in_hour(await hourly.last(db, now)) == {"ClickBlocked": 1}
    await store.record(replace(_click(1, ActionType.CLICK_ALLOWED, False, "eve@contoso.example"), timestamp=now))
    await store.record(replace(_click(2, ActionType.CLICK_BLOCKED, False, "eve@contoso.example"),
                               timestamp=T0 + timedelta(minutes=5)))  # written late, in an hour already counted
    assert in_hour(await hourly.last(db, now)) == {"ClickBlocked": 2}
    assert in_hour(await hourly.last(db, now)) == {"ClickBlocked": 2}  # counted again once, not twice
    await store.close()


async def test_feed_and_bot_setting_changes_are_audited_with_the_change(db: Database) -> None:
    """Feed add, disable, enable, remove and a bot setting write their audit row in the change's transaction:
    a change refused (an unknown feed) leaves no row."""
    from shared.store.conversations import ConversationStore
    from shared.store.feeds import FeedRegistry, FeedSpec, UnknownFeed

    ana = Actor("aad-ana", "Ana", via="console")
    feeds = FeedRegistry(db)
    await feeds.add(FeedSpec("urlhaus", "https://urlhaus.abuse.ch/downloads/text/", "plain", None, 3600.0), now=1.0,
                    actor=ana)
    await feeds.set_enabled("urlhaus", False, actor=ana)
    await feeds.set_enabled("urlhaus", True, actor=ana)
    await feeds.remove("urlhaus", actor=ana)
    for refused in (feeds.remove("urlhaus", actor=ana), feeds.set_enabled("nope", True, actor=ana)):
        with pytest.raises(UnknownFeed):
            await refused
    await ConversationStore(db).set_setting("security_channel", "19:soc@thread.tacv2", T0, "aad-ana", actor=ana)
    rows = await db.fetchall("SELECT actor, action, target FROM audit_log ORDER BY id")
    assert {r["actor"] for r in rows} == {"aad-ana"}
    assert [(r["action"], r["target"]) for r in rows] == [
        ("feed.add", "urlhaus"), ("feed.disable", "urlhaus"), ("feed.enable", "urlhaus"), ("feed.remove", "urlhaus"),
        ("bot.security_channel", "19:soc@thread.tacv2")]


async def test_the_story_reads_deliveries_verdict_changes_and_actions(db: Database) -> None:
    """An incident story's reads agree on both backends: an alert's deliveries by key, the card's posts by
    payload, the outbox backlog, verdict changes on expressions since a time, actions on an incident or alerts."""
    from shared.store.alerts import AlertStore
    from shared.store.outbox import OutboxTable
    from shared.store.verdict_changes import VerdictChangeTable
    from shared.verdicts.changes import ChangeLog, ExpressionChange
    from shared.verdicts.model import Verdict

    outbox, at = OutboxTable(db), T0.timestamp()
    async with db.transaction() as tx:
        mail = await outbox.insert(tx, "email", "", {"to": "soc"}, "alert:k1:email", at, at)
        await outbox.insert(tx, "webhook", "", {}, "alert:k1:webhook:0", at + 1, at + 1)
        await outbox.insert(tx, "webhook", "", {}, "alert:k2:webhook:0", at + 2, at + 2)
        await outbox.insert(tx, "teams", "soc", {"card_key": "incident:7"}, None, at + 3, at + 3)
        await outbox.insert(tx, "teams", "soc", {"card_key": "incident:71"}, None, at + 4, at + 4)
    assert mail is not None
    await outbox.finish(mail, "done", 1, None, None, at + 10)
    assert [(d.kind, d.status, d.done_at, d.attempts) for d in await outbox.deliveries_keyed("alert:k1:%")] == [
        ("email", "done", at + 10, 1), ("webhook", "pending", None, 0)]
    cards = await outbox.teams_deliveries_containing('"card_key":"incident:7"')
    assert [(d.kind, d.created_at, d.payload) for d in cards] == [("teams", at + 3, '{"card_key":"incident:7"}')]
    assert sorted((b.kind, b.status, b.count, b.oldest) for b in await outbox.backlog()) == [
        ("teams", "pending", 2, at + 3), ("webhook", "pending", 2, at + 1)]

    log = ChangeLog(db, None)
    await log.record("feed:x", [ExpressionChange("a.example/", Verdict.UNKNOWN, Verdict.MALICIOUS, ("MALWARE",)),
                                ExpressionChange("b.example/", Verdict.UNKNOWN, Verdict.SUSPICIOUS)], at=T0)
    await log.record("admin", [ExpressionChange("a.example/", Verdict.MALICIOUS, Verdict.CLEAN, reason="ok")],
                     at=T0 + timedelta(hours=1))
    changes = VerdictChangeTable(db)
    found = await changes.on_expressions({"a.example/", "c.example/"}, T0)
    assert [(c.expression, c.new_verdict, c.threat_types, c.source) for c in found] == [
        ("a.example/", "malicious", ("MALWARE",), "feed:x"), ("a.example/", "clean", (), "admin")]
    assert [c.reason for c in await changes.on_expressions({"a.example/"}, T0 + timedelta(minutes=30))] == ["ok"]
    assert await changes.on_expressions(set(), T0) == []

    alerts = AlertStore(db)
    assert not await alerts.any_stored()
    async with db.transaction() as tx:
        for alert_id, incident_id, verb in ((None, 7, "status"), (3, None, "classification"), (4, None, "comment")):
            await AlertStore.record_action(tx, alert_id=alert_id, incident_id=incident_id, verb=verb, detail="",
                                           actor="a", actor_name="A", via="console", at=at)
    assert [r["verb"] for r in await alerts.actions_on(7, [3])] == ["status", "classification"]
    assert [r["verb"] for r in await alerts.actions_on(7, [])] == ["status"]
