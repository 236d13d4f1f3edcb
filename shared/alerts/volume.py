"""Bursts: how many clicks a volume rule counts on one URL in the window that ends at a click.

Counted in the click log, not in memory, so every engine and every replay counts the same clicks.
"""

from __future__ import annotations

from typing import Any

from shared.alerts.rules import Rule
from shared.clicks import Click
from shared.store.clicks import url_rhost
from shared.store.database import Executor


def _conditions(rule: Rule) -> tuple[str, list[Any]]:
    cond = rule.click
    sql, params = "", list[Any]()
    listed = (("workload", cond.workloads), ("verdict", cond.verdicts), ("action_type", cond.action_types))
    for column, values in listed:
        if values is not None:
            ordered = sorted(values)
            sql += f" AND {column} IN ({', '.join('?' for _ in ordered)})"
            params += ordered
    if cond.clicked_through is not None:
        sql += " AND is_clicked_through = ?"
        params.append(cond.clicked_through)
    return sql, params


async def burst_reached(db: Executor, rule: Rule, click: Click) -> bool:
    """Whether ``click`` is at least the rule's ``volume.clicks``-th matching click on its URL in the window."""
    volume = rule.volume
    if volume is None:
        return True
    end = click.timestamp.timestamp()
    extra, params = _conditions(rule)
    row = await db.fetchone(
        "SELECT COUNT(*) AS n FROM clicks WHERE url_rhost = ? AND url = ? AND timestamp > ? AND timestamp <= ?"
        + extra,
        (url_rhost(click.url), click.url, end - volume.seconds, end, *params),
    )
    return row is not None and int(row["n"]) >= volume.clicks
