"""Feeds: each threat feed's state (last update, entries, last error), "update now", and accepting a held update.

"Update now" never accepts a download that would drop more than half of a feed (it is held, as in the
worker's rounds); "Accept the held update" is ``safelinks feeds update NAME --force``, audited with
the administrator who pressed it when the new copy is applied.
"""

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
from shared.store.feeds import FeedRecord, FeedRegistry, FeedRegistryError, format_every
from shared.verdicts.feeds import HELD_PREFIX

log = logging.getLogger("safelinks.console")


@viewer
async def feeds_page(request: web.Request) -> web.StreamResponse:
    console = request.config_dict[CONSOLE]
    records = await FeedRegistry(console.services.db).list()
    running = {name.removeprefix("feed:") for name, task in console.tasks.items()
               if name.startswith("feed:") and not task.done()}
    started, accepted = request.query.get("started", "")[:100], request.query.get("accepted", "")[:100]
    done = None
    if started:
        done = f"Update of {started} started; this page shows its result when it is over."
    elif accepted:
        done = f"Accepting the held update of {accepted}: downloaded again and applied; this page shows the result."
    return console.templates.page(
        "feeds.html", request, feeds=records, now=console.now(), every=format_every, running=running,
        sources=console.services.verdicts.health_report(), held={r.name for r in records if is_held(r)},
        done=done)


def is_held(record: FeedRecord) -> bool:
    """Whether the feed's last download was held back (and nothing good came after it)."""
    error, at = record.last_error, record.last_error_at
    return bool(error and error.startswith(HELD_PREFIX) and at is not None
                and (record.last_success_at is None or at >= record.last_success_at))


@changer()
async def update_now(request: web.Request) -> web.StreamResponse:
    """Start a feed's update in the background (a big feed takes minutes); the page shows how it went."""
    return await _start_update(request, accept=False)


@changer()
async def accept_held(request: web.Request) -> web.StreamResponse:
    """Download the held feed again and apply it even though it drops more than half (``--force``)."""
    return await _start_update(request, accept=True)


async def _start_update(request: web.Request, *, accept: bool) -> web.StreamResponse:
    console = request.config_dict[CONSOLE]
    sources = console.services.sources
    name = str((await request.post()).get("name", ""))
    try:
        record = await FeedRegistry(console.services.db).require(name)
    except FeedRegistryError as exc:
        return console.templates.page("refused.html", request, status=404, title="No such feed", message=str(exc))
    if sources is None:
        return console.templates.page("refused.html", request, status=409, title="Feeds are off",
                                      message="This process does not run the feed sources.")
    if accept and not is_held(record):
        return console.templates.page("refused.html", request, status=409, title="Nothing held",
                                      message=f"Feed {name} has no held update to accept; nothing was changed.")
    running = console.tasks.get(f"feed:{name}")
    if running is None or running.done():
        actor = actor_of(request)
        update = sources.updater.update(name, force=True, actor=actor) if accept else sources.updater.update(name)
        console.tasks[f"feed:{name}"] = asyncio.create_task(update, name=f"console-feed-{name}")
        console.tasks[f"feed:{name}"].add_done_callback(_log_failure)
        if not accept:  # an accepted update is audited when it is applied, in the same transaction
            async with console.services.db.transaction() as tx:
                await audit.record(tx, actor, "feed.update", name, at=console.now())
    return see_other(f"/console/feeds?{urlencode({'accepted' if accept else 'started': name})}")


def _log_failure(task: asyncio.Task[object]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("feed update from the console failed: %s", task.exception())
