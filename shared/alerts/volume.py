"""Bursts: how many clicks a volume rule counts on one URL in the window that ends at a click.

Counted in the click log, not in memory, so every engine and every replay counts the same clicks.
"""

from __future__ import annotations

from shared.alerts.rules import Rule
from shared.clicks import Click
from shared.store.clicks import ClickStore


async def burst_reached(clicks: ClickStore, rule: Rule, click: Click) -> bool:
    """Whether ``click`` is at least the rule's ``volume.clicks``-th matching click on its URL in the window."""
    volume = rule.volume
    if volume is None:
        return True
    end = click.timestamp.timestamp()
    cond = rule.click
    counted = await clicks.count_on_url(
        click.url, end - volume.seconds, end, workloads=cond.workloads, verdicts=cond.verdicts,
        action_types=cond.action_types, clicked_through=cond.clicked_through,
    )
    return counted >= volume.clicks

