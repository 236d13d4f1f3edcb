"""Secrets stay secret: no credential of a URL in /healthz, errors or logs; private files for the store."""

from __future__ import annotations

import io
import logging
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from safelinks.server import create_app
from shared.config import Settings
from shared.escaping import install_log_safety
from shared.redaction import redact_text
from shared.store import open_database
from shared.store.feeds import FeedSpec
from tests.conftest import FakeClock
from tests.proxy_fixtures import Proxy

SECRETS = ("hunter2", "AIzaSECRETKEY", "t0k3n")


@pytest.mark.parametrize(("text", "shown"), [
    ("https://bob:hunter2@feeds.example/list", "https://***@feeds.example/list"),
    ("GET https://feeds.example/v4?key=AIzaSECRETKEY&fmt=csv failed",
     "GET https://feeds.example/v4?key=***&fmt=csv failed"),
    ("https://h.example/p?x=1&access_token=t0k3n#frag", "https://h.example/p?x=1&access_token=***#frag"),
    ("https://h.example/p#id_token=t0k3n", "https://h.example/p#id_token=***"),
    ("https://h.example/p?API-Key=t0k3n;sig=abc", "https://h.example/p?API-Key=***;sig=***"),
    ("https://h.example/p?page=2&q=phish", "https://h.example/p?page=2&q=phish"),
    ("no address here: key=value", "no address here: key=value"),
])
def test_redaction_table(text: str, shown: str) -> None:
    """User information and credential-named query values of every URL in a text become ***."""
    assert redact_text(text) == shown


async def test_healthz_shows_status_words_and_no_feed_credentials(
        make_settings: Callable[..., Settings], aiohttp_client: Any, aiohttp_server: AiohttpServer) -> None:
    """A feed failing at an address with a password and an API key: /healthz says 'failing', nothing more."""
    app = web.Application()
    app.router.add_get("/list", lambda request: web.Response(status=500, text="down"))
    server = await aiohttp_server(app)
    source = f"http://feeduser:hunter2@127.0.0.1:{server.port}/list?apikey=AIzaSECRETKEY"
    settings = make_settings(feed_allow_private=True)
    proxy = Proxy(await aiohttp_client(create_app(settings, role="all", clock=FakeClock())))
    services = proxy.services
    assert services.sources is not None
    await services.sources.updater.registry.add(FeedSpec("remote", source, "plain"), now=time.time())
    assert (await services.sources.updater.update("remote")).status != "updated"
    await services.sources.updater.sync()
    response = await proxy.client.get("/healthz")
    text = await response.text()
    body = await response.json()
    assert not any(s in text for s in SECRETS), text
    assert body["verdict_sources"]["feeds/remote"] == "failing", body
    words = {"ok", "degraded", "failing"}
    assert {body["status"], body["database"], *body["verdict_sources"].values()} <= words
    (record,) = [r for r in await services.sources.updater.registry.list() if r.name == "remote"]
    assert record.last_error and "HTTP 500" in record.last_error and "***" in record.last_error
    assert not any(s in record.last_error for s in SECRETS)


def test_log_lines_are_one_line_without_secrets() -> None:
    """Every log record passes the handler's filter: control characters escaped, URL credentials redacted."""
    logger = logging.getLogger("tests.secrets.log")
    logger.propagate = False
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        install_log_safety(logger)
        logger.warning("feed %s failed: %s", "https://u:hunter2@h.example/x?token=t0k3n",
                       "bad\nINFO forged line")
        first = stream.getvalue()
        try:
            raise ConnectionError("cannot reach https://u:hunter2@h.example/x")
        except ConnectionError:
            logger.exception("fetch failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert first.count("\n") == 1 and "\\nINFO forged line" in first
    assert "https://***@h.example/x?token=***" in first and "ConnectionError" in out
    assert not any(s in out for s in SECRETS), out


async def test_data_directory_and_database_files_are_private(tmp_path: Path) -> None:
    """A new data directory is 0700; the database and its WAL and shared-memory files are 0600."""
    path = tmp_path / "var" / "safelinks.db"
    db = await open_database(f"sqlite:///{path}")
    try:
        await db.execute("CREATE TABLE t (x TEXT)")
        await db.execute("INSERT INTO t VALUES ('personal')")
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()}
    finally:
        await db.close()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert modes["safelinks.db"] == 0o600 and modes.get("safelinks.db-wal") == 0o600, modes
    assert all(mode & 0o077 == 0 for mode in modes.values()), modes
