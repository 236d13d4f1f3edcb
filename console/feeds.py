"""Feeds: each threat feed's state (last update, entries, last error), and "update now"."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlencode

from aiohttp import web

from console.guard import changer, viewer
from console.incidents import actor_of
from console.render import see_other
from console.state import CONSOLE
from shared.store import audit
from shared.store.feeds import FeedRegistry, FeedRegistryError, format_every

log = logging.getLogger("safelinks.console")


@viewer
async def feeds_page(request: web.Request) -> web.StreamResponse:
    console = request.config_dict[CONSOLE]
    records = await FeedRegistry(console.services.db).list()
    running = {name.removeprefix("feed:") for name, task in console.tasks.items()
               if name.startswith("feed:") and not task.done()}
    done = request.query.get("started", "")[:100]
    return console.templates.page(
        "feeds.html", request, feeds=records, now=console.now(), every=format_every, running=running,
        sources=console.services.verdicts.health_report(),
        done=f"Update of {done} started; this page shows its result when it is over." if done else None)


@changer()
async def update_now(request: web.Request) -> web.StreamResponse:
    """Start a feed's update in the background (a big feed takes minutes); the page shows how it went."""
    console = request.config_dict[CONSOLE]
    sources = console.services.sources
    name = str((await request.post()).get("name", ""))
    try:
        await FeedRegistry(console.services.db).require(name)
    except FeedRegistryError as exc:
        return console.templates.page("refused.html", request, status=404, title="No such feed", message=str(exc))
    if sources is None:
        return console.templates.page("refused.html", request, status=409, title="Feeds are off",
                                      message="This process does not run the feed sources.")
    running = console.tasks.get(f"feed:{name}")
    if running is None or running.done():
        console.tasks[f"feed:{name}"] = asyncio.create_task(sources.updater.update(name, force=True),
                                                         name=f"console-feed-{name}")
        console.tasks[f"feed:{name}"].add_done_callback(_log_failure)
        async with console.services.db.transaction() as tx:
            await audit.record(tx, actor_of(request), "feed.update", name, at=console.now())
    return see_other(f"/console/feeds?{urlencode({'started': name})}")


def _log_failure(task: asyncio.Task[object]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("feed update from the console failed: %s", task.exception())
