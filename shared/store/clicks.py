"""Reading and writing clicks."""

from __future__ import annotations

import builtins
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from shared.clicks import ActionType, Click, Workload, reversed_host
from shared.store.batch import BatchWriter
from shared.store.database import Database, Executor, Row
from shared.store.purge import BATCH, delete_in_batches
from shared.urls import InvalidURL, canonical_host, parse, parse_typed

_COLUMNS = (
    "report_id, timestamp, url, url_rhost, action_type, account_upn, account_object_id, workload, "
    "network_message_id, threat_types, detection_methods, ip_address, is_clicked_through, url_chain, "
    "tenant_id, team_id, channel_id, conversation_id, message_id, sender, recipient, user_agent, "
    "policy, verdict, verdict_source"
)
# "." sorts just before "/": every subdomain of a reversed host lies in [host + ".", host + "/").
_SUBDOMAIN_END = "/"
INSERT_CLICK = f"INSERT INTO clicks ({_COLUMNS}) VALUES ({', '.join('?' * len(_COLUMNS.split(',')))})"


@lru_cache(maxsize=4096)
def url_rhost(url: str) -> str:
    """The reversed host the click log indexes a URL by (``moc.elpmaxe.www``, ``]1::[``).

    It is the host a browser opens, in the form the lookup expressions give it (``canonical_host``), so
    the look-back finds a click from the host of a verdict's expression (``reversed_host`` of it): an
    IPv6 address keeps its brackets, an IPv4-carrying one is its IPv4 address, and a URL posted as a
    gateway wrote it (``http://%61.contoso.com/``, ``http://bücher.example/``, ``http://0x7f.1/``) is
    indexed by what a browser reads there, not by its spelling.
    """
    try:
        # The reading of ``canonical_parts``; for "http(s)://…" (every click the proxy records) it is
        # ``parse``'s, without the typed-text checks.
        value = parse(url) if url.startswith(("https://", "http://")) else parse_typed(url)
        return reversed_host(canonical_host(value))
    except InvalidURL:
        # Text the URL model refuses (only rows stored before clicks were checked) names no host a browser
        # opens, so it is indexed by none: no expression covers it, and exact-URL lookups compute the key
        # from the same text.
        return ""


@lru_cache(maxsize=4096)
def _json_list(items: tuple[str, ...]) -> str:
    return json.dumps(items)


def click_row(c: Click) -> tuple[Any, ...]:
    """The parameters of ``INSERT_CLICK`` for a click."""
    # The same links are clicked over and over: their derived columns are computed once.
    return (
        c.report_id,
        c.timestamp.timestamp(),
        c.url,
        url_rhost(c.url),
        c.action_type.value,
        c.account_upn,
        c.account_object_id,
        c.workload.value,
        c.network_message_id,
        ",".join(c.threat_types),
        ",".join(c.detection_methods),
        c.ip_address,
        c.is_clicked_through,
        _json_list(c.url_chain),
        c.tenant_id,
        c.team_id,
        c.channel_id,
        c.conversation_id,
        c.message_id,
        c.sender,
        c.recipient,
        c.user_agent,
        c.policy,
        c.verdict,
        c.verdict_source,
    )


def click_from_row(r: Row) -> Click:
    def split(v: str | None) -> tuple[str, ...]:
        return tuple(p for p in (v or "").split(",") if p)

    return Click(
        report_id=r["report_id"],
        timestamp=datetime.fromtimestamp(r["timestamp"], UTC),
        url=r["url"],
        action_type=ActionType(r["action_type"]),
        workload=Workload(r["workload"]),
        verdict=r["verdict"],
        account_upn=r["account_upn"],
        account_object_id=r["account_object_id"],
        network_message_id=r["network_message_id"],
        threat_types=split(r["threat_types"]),
        detection_methods=split(r["detection_methods"]),
        ip_address=r["ip_address"],
        is_clicked_through=bool(r["is_clicked_through"]),
        url_chain=tuple(json.loads(r["url_chain"] or "[]")),
        tenant_id=r["tenant_id"],
        team_id=r["team_id"],
        channel_id=r["channel_id"],
        conversation_id=r["conversation_id"],
        message_id=r["message_id"],
        sender=r["sender"],
        recipient=r["recipient"],
        user_agent=r["user_agent"],
        policy=r["policy"],
        verdict_source=r["verdict_source"],
    )


@dataclass(frozen=True, slots=True)
class ClickFilter:
    """Which clicks a listing wants. Empty fields match everything."""

    since: datetime | None = None
    until: datetime | None = None
    user: str | None = None
    url_contains: str | None = None
    limit: int | None = None
    action_type: str | None = None
    clicked_through: bool | None = None
    workload: str | None = None
    message_id: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.since is not None:
            clauses.append("timestamp >= ?")
            params.append(self.since.timestamp())
        if self.until is not None:
            clauses.append("timestamp < ?")
            params.append(self.until.timestamp())
        if self.user:
            clauses.append("LOWER(account_upn) = ?")
            params.append(self.user.lower())
        if self.url_contains:
            clauses.append("url LIKE ?")
            params.append(f"%{self.url_contains}%")
        for column, value in (("action_type", self.action_type), ("workload", self.workload),
                              ("message_id", self.message_id)):
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.clicked_through is not None:
            clauses.append("is_clicked_through = ?")
            params.append(self.clicked_through)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


# Rows read and rewritten at a time when the host index is recomputed (``ClickStore.reindex_hosts``).
HOST_BATCH = 1000


class ClickStore:
    """Durable click log. ``record`` returns once the click is committed."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._writer = BatchWriter(db, INSERT_CLICK)

    def start(self) -> None:
        self._writer.start()

    async def close(self) -> None:
        await self._writer.close()

    def record(self, click: Click) -> Awaitable[None]:
        """Write a click; awaiting the result waits for its commit. A repeated click-through raises DuplicateKey."""
        return self._writer.write(click_row(click))

    async def get_view(self, report_id: str) -> Click | None:
        """The warning-page view (not the click-through) with this ReportId."""
        row = await self._db.fetchone(
            f"SELECT * FROM clicks WHERE report_id = ? AND is_clicked_through = {self._false}",
            (report_id,),
        )
        return click_from_row(row) if row else None

    async def list(self, flt: ClickFilter) -> list[Click]:
        where, params = flt.where()
        sql = f"SELECT * FROM clicks{where} ORDER BY timestamp DESC, id DESC"
        if flt.limit:
            sql += f" LIMIT {int(flt.limit)}"
        return [click_from_row(r) for r in await self._db.fetchall(sql, params)]

    async def page(self, flt: ClickFilter, *, top: int, skip: int = 0) -> tuple[builtins.list[Click], bool]:
        """A page of clicks, newest first, and whether more follow (no full count: a million rows would
        be read for it)."""
        where, params = flt.where()
        rows = await self._db.fetchall(
            f"SELECT * FROM clicks{where} ORDER BY timestamp DESC, id DESC LIMIT {int(top) + 1} OFFSET {int(skip)}",
            params,
        )
        return [click_from_row(r) for r in rows[:top]], len(rows) > top

    async def on_urls(self, urls: builtins.list[str], since: datetime, until: datetime) -> builtins.list[Click]:
        """Every click on these exact URLs within [since, until), oldest first (by the reversed-host index)."""
        found: builtins.list[Click] = []
        for url in dict.fromkeys(urls):
            rows = await self._db.fetchall(
                "SELECT * FROM clicks WHERE url_rhost = ? AND url = ? AND timestamp >= ? AND timestamp < ? "
                "ORDER BY timestamp, id LIMIT 1000",
                (url_rhost(url), url, since.timestamp(), until.timestamp()),
            )
            found += [click_from_row(r) for r in rows]
        return sorted(found, key=lambda c: c.timestamp)

    async def counts_by_hour(self, since: datetime) -> builtins.list[tuple[int, str, int]]:
        """(hour as epoch seconds, ActionType, clicks) for every hour from ``since`` on."""
        bucket = "FLOOR(timestamp / 3600)" if self._db.dialect == "postgresql" else "CAST(timestamp / 3600 AS INTEGER)"
        rows = await self._db.fetchall(
            f"SELECT {bucket} AS h, action_type, COUNT(*) AS n FROM clicks WHERE timestamp >= ? "
            "GROUP BY h, action_type", (since.timestamp(),))
        return [(int(r["h"]) * 3600, r["action_type"], int(r["n"])) for r in rows]

    async def last_id(self) -> int:
        row = await self._db.fetchone("SELECT MAX(id) AS n FROM clicks")
        return int(row["n"]) if row and row["n"] is not None else 0

    async def written_after(self, after_id: int, before: datetime) -> builtins.list[tuple[int, float]]:
        """(id, timestamp) of clicks stored after ``after_id`` whose time is before ``before``: late arrivals."""
        rows = await self._db.fetchall("SELECT id, timestamp FROM clicks WHERE id > ? AND timestamp < ? ORDER BY id",
                                       (after_id, before.timestamp()))
        return [(int(r["id"]), float(r["timestamp"])) for r in rows]

    async def after(self, after_id: int, limit: int) -> builtins.list[tuple[int, Click]]:
        """(id, click) of the first ``limit`` clicks stored after ``after_id``, in the order they were stored."""
        rows = await self._db.fetchall(
            f"SELECT * FROM clicks WHERE id > ? ORDER BY id LIMIT {int(limit)}",
            (after_id,),
        )
        return [(int(r["id"]), click_from_row(r)) for r in rows]

    async def count_on_url(self, url: str, after: float, until: float, *, workloads: Set[str] | None = None,
                           verdicts: Set[str] | None = None, action_types: Set[str] | None = None,
                           clicked_through: bool | None = None) -> int:
        """Clicks on exactly ``url`` with a time in (after, until], of the given workloads, verdicts, ActionTypes
        and click-through (None: any)."""
        sql, params = "", builtins.list[Any]()
        for column, values in (("workload", workloads), ("verdict", verdicts), ("action_type", action_types)):
            if values is not None:
                ordered = sorted(values)
                sql += f" AND {column} IN ({', '.join('?' for _ in ordered)})"
                params += ordered
        if clicked_through is not None:
            sql += " AND is_clicked_through = ?"
            params.append(clicked_through)
        row = await self._db.fetchone(
            "SELECT COUNT(*) AS n FROM clicks WHERE url_rhost = ? AND url = ? AND timestamp > ? AND timestamp <= ?"
            + sql,
            (url_rhost(url), url, after, until, *params),
        )
        return int(row["n"]) if row is not None else 0

    async def on_host(self, host: str, start: float, end: float,
                      url_matches: Callable[[str], bool]) -> AsyncIterator[Click]:
        """Clicks on ``host`` or its subdomains with a time in [start, end] whose URL ``url_matches``, oldest
        first (by the reversed-host index: one or two range scans)."""
        rhost = reversed_host(host)
        async for row in self._db.iterate(
            "SELECT * FROM clicks WHERE ((url_rhost = ?) OR (url_rhost >= ? AND url_rhost < ?)) "
            "AND timestamp >= ? AND timestamp <= ? ORDER BY timestamp, id",
            (rhost, rhost + ".", rhost + _SUBDOMAIN_END, start, end),
        ):
            if url_matches(row["url"]):
                yield click_from_row(row)

    async def stream(self, flt: ClickFilter) -> AsyncIterator[Click]:
        where, params = flt.where()
        async for row in self._db.iterate(f"SELECT * FROM clicks{where} ORDER BY timestamp, id", params):
            yield click_from_row(row)

    async def count(self) -> int:
        row = await self._db.fetchone("SELECT COUNT(*) AS n FROM clicks")
        return int(row["n"]) if row else 0

    async def feed_hits(self, since: float) -> dict[str, int]:
        """Clicks each feed decided since ``since`` (epoch seconds), by feed name."""
        rows = await self._db.fetchall(
            "SELECT verdict_source, COUNT(*) AS n FROM clicks WHERE timestamp >= ? AND verdict_source LIKE 'feed:%' "
            "GROUP BY verdict_source", (since,))
        return {str(r["verdict_source"]).removeprefix("feed:"): int(r["n"]) for r in rows}

    async def purge(self, older_than: datetime) -> int:
        """Delete clicks older than the retention horizon; return how many."""
        return await self._db.execute("DELETE FROM clicks WHERE timestamp < ?", (older_than.timestamp(),))

    async def reindex_hosts(self, batch: int = HOST_BATCH) -> int:
        """Recompute every stored click's host index (``url_rhost``), ``batch`` rows at a time; return how many
        changed."""
        # By id, a batch at a time, each batch committed on its own: memory and transactions stay small
        # however large the table, and running it again (after an interruption) changes nothing twice.
        changed, after = 0, 0
        while True:
            rows = await self._db.fetchall(
                f"SELECT id, url, url_rhost FROM clicks WHERE id > ? ORDER BY id LIMIT {int(batch)}", (after,))
            if not rows:
                return changed
            after = int(rows[-1]["id"])
            moved = [(rhost, r["id"]) for r in rows if (rhost := url_rhost(r["url"])) != r["url_rhost"]]
            if moved:
                await self._db.executemany("UPDATE clicks SET url_rhost = ? WHERE id = ?", moved)
                changed += len(moved)

    @property
    def _false(self) -> str:
        return "FALSE" if self._db.dialect == "postgresql" else "0"


async def purge_clicks(db: Executor, before: float, read_up_to: int) -> int:
    """Delete clicks older than ``before`` that the alert engine has read (ids up to ``read_up_to``)."""
    return await delete_in_batches(
        db, f"DELETE FROM clicks WHERE id IN (SELECT id FROM clicks WHERE timestamp < ? AND id <= ? "
            f"ORDER BY id LIMIT {BATCH})", (before, read_up_to))
