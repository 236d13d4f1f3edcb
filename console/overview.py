"""Overview: the last 7 days at a glance — clicks per hour, alerts per day, open incidents, feed and
service health."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from console import demo
from console.charts import Bar, Series, legend, stacked_bars
from console.guard import SESSION_KEY, viewer
from console.health import service_health
from console.state import CONSOLE
from safelinks.api import ALERTING
from shared.clicks import ActionType
from shared.store.alerts import AlertStore
from shared.store.clicks import ClickStore
from shared.store.coverage import CoverageStore
from shared.store.database import Database
from shared.store.feeds import FeedRegistry
from shared.store.incidents import IncidentFilter

DAYS = 7
CLICK_SERIES = (
    Series(ActionType.CLICK_ALLOWED.value, "#2f7d4a", "solid"),
    Series(ActionType.CLICK_BLOCKED.value, "#b3261e", "hatch"),
    Series(ActionType.CLICK_BLOCKED_BY_TENANT_POLICY.value, "#6d1b7b", "cross"),
    Series(ActionType.URL_SCAN_IN_PROGRESS.value, "#a15c00", "dots"),
    Series(ActionType.URL_ERROR_PAGE.value, "#57606a", "lines"),
)
SEVERITY_SERIES = (
    Series("high", "#b3261e", "hatch"),
    Series("medium", "#a15c00", "dots"),
    Series("low", "#0a5a8a", "lines"),
    Series("informational", "#57606a", "solid"),
)


# Click ids may commit out of order (PostgreSQL hands them out before the commit): clicks this far below the
# highest id seen are looked at again, so one that committed late is not missed.
ID_SLACK = 1000


@dataclass
class HourlyClicks:
    """Clicks per hour and ActionType. Hours that are over rarely change, so they are counted once per
    process and only the current hour is read again: the page stays fast with a million clicks stored.
    A click stored after its hour was counted (a replica's late write, a click timed in the past) is
    found by its id, and its hour is counted again."""

    closed: dict[int, dict[str, int]] = field(default_factory=dict)
    seen_id: int = 0  # the highest click id when the closed hours were last checked
    handled: set[int] = field(default_factory=set)  # late clicks whose hour was already counted again

    async def last(self, db: Database, now: datetime) -> list[tuple[int, dict[str, int]]]:
        hour = int(now.timestamp()) // 3600 * 3600
        first = hour - (DAYS * 24 - 1) * 3600
        for old in [h for h in self.closed if h < first]:
            del self.closed[old]
        clicks = ClickStore(db)
        top = await clicks.last_id()
        # On the first count every stored click is counted below: the recent ones are only noted as handled.
        counted = bool(self.closed)
        floor = self.seen_id if counted else top
        for click_id, at in await clicks.written_after(floor - ID_SLACK, datetime.fromtimestamp(hour, UTC)):
            if click_id not in self.handled:
                if counted:
                    self.closed.pop(int(at) // 3600 * 3600, None)
                self.handled.add(click_id)
        self.seen_id = max(self.seen_id, top)
        self.handled = {i for i in self.handled if i > self.seen_id - ID_SLACK}
        missing = [h for h in range(first, hour, 3600) if h not in self.closed]
        since = missing[0] if missing else hour
        fresh: dict[int, dict[str, int]] = {}
        for h, action, n in await clicks.counts_by_hour(datetime.fromtimestamp(since, UTC)):
            fresh.setdefault(h, {})[action] = n
        for h in range(since, hour, 3600):
            self.closed[h] = fresh.get(h, {})
        return [(h, self.closed.get(h, fresh.get(h, {}))) for h in range(first, hour + 3600, 3600)]


@viewer
async def overview_page(request: web.Request) -> web.StreamResponse:
    console, system = request.config_dict[CONSOLE], request.config_dict[ALERTING]
    db = console.services.db
    now = console.clock()
    hours = await console.hourly.last(db, now)
    click_bars = [Bar(datetime.fromtimestamp(h, UTC).strftime("%a %d"), values,
                      labelled=datetime.fromtimestamp(h, UTC).hour == 0) for h, values in hours]
    day0 = int(now.timestamp()) // 86400 * 86400 - (DAYS - 1) * 86400
    per_day: dict[int, dict[str, int]] = {}
    for d, severity, n in await AlertStore(db).counts_by_day(datetime.fromtimestamp(day0, UTC)):
        per_day.setdefault(d, {})[severity] = n
    alert_bars = [Bar(datetime.fromtimestamp(d, UTC).strftime("%a %d"), per_day.get(d, {}))
                  for d in range(day0, day0 + DAYS * 86400, 86400)]
    active, _ = await system.writer.incidents.page(IncidentFilter(status="active", top=10))
    working, _ = await system.writer.incidents.page(IncidentFilter(status="inProgress", top=10))
    open_incidents = sorted([*active, *working], key=lambda i: i.last_activity, reverse=True)[:10]
    click_totals = {s.name: sum(v.get(s.name, 0) for _, v in hours) for s in CLICK_SERIES}
    alert_totals = {s.name: sum(b.values.get(s.name, 0) for b in alert_bars) for s in SEVERITY_SERIES}
    return console.templates.page(
        "overview.html", request,
        clicks_chart=stacked_bars("clicks", "Clicks per hour by ActionType, last 7 days", click_bars, CLICK_SERIES),
        clicks_legend=legend("clicks", CLICK_SERIES), click_totals=click_totals,
        alerts_chart=stacked_bars("alerts", "Alerts per day by severity, last 7 days", alert_bars,
                                  SEVERITY_SERIES, height=200),
        alerts_legend=legend("alerts", SEVERITY_SERIES), alert_totals=alert_totals, alert_bars=alert_bars,
        severities=SEVERITY_SERIES, open_incidents=open_incidents,
        feeds=await FeedRegistry(db).list(), now=now.timestamp(),
        health=await service_health(console.services.settings, db, now),
        coverage=await CoverageStore(db).summary(), coverage_on=console.services.settings.coverage != ["off"],
        demo=request[SESSION_KEY].may_change and await demo.offered(console))
