"""Microsoft 365 Agents Playground (offline Teams client) driven over its HTTP API against the running bot.

The Playground is npm ``@microsoft/m365agentsplayground`` (a pre-release licence, so it is installed
into ``.cache/`` at test time, never vendored). Skips with the reason when npm or the package is
unavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from safelinks.server import create_app
from shared.config import Settings
from shared.services import SERVICES
from tests.conftest import BROWSER_UA

ROOT = Path(__file__).resolve().parent.parent
PREFIX = ROOT / ".cache" / "playground"
BINARY = PREFIX / "node_modules" / ".bin" / "agentsplayground"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _playground() -> Path:
    if BINARY.exists():
        return BINARY
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("npm/node are not installed: the Agents Playground cannot run here")
    PREFIX.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(PREFIX),
                           "@microsoft/m365agentsplayground"], capture_output=True, text=True, timeout=240)
    if done.returncode != 0 or not BINARY.exists():
        pytest.skip(f"could not install @microsoft/m365agentsplayground: {done.stderr.strip()[-300:]}")
    return BINARY


@contextlib.asynccontextmanager
async def _bot(settings: Settings, port: int) -> AsyncIterator[web.Application]:
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield app
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def _client(binary: Path, bot_port: int, port: int, log: Path) -> AsyncIterator[str]:
    env = dict(os.environ, TEAMSAPPTESTER_BROWSER="none", M365_AGENTS_PLAYGROUND_LOGFILE=str(log))
    process = subprocess.Popen(
        [str(binary), "-e", f"http://127.0.0.1:{bot_port}/api/messages", "-c", "msteams", "--dt", "-p", str(port)],
        env=env, cwd=log.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(150):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(base + "/_internal/v1/config") as response:
                        if response.status == 200:
                            break
                if process.poll() is not None:
                    pytest.skip(f"the Playground exited with {process.returncode}: {log.read_text()[-300:]}")
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the Playground did not start in 15 s")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def _open_urls(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["url"]] if node.get("type") == "Action.OpenUrl" else []
        return found + [u for k, v in node.items() if k != "fallback" for u in _open_urls(v)]
    if isinstance(node, list):
        return [u for item in node for u in _open_urls(item)]
    return []


async def test_personal_chat_in_the_playground_gets_the_card_and_its_link_is_served(
        make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    """A personal-chat message with a link gets the reply card in the Playground; the proxy serves its link."""
    binary = _playground()
    bot_port, port = _free_port(), _free_port()
    settings = make_settings(public_url=f"http://127.0.0.1:{bot_port}", port=bot_port)
    async with _bot(settings, bot_port) as app, _client(binary, bot_port, port, tmp_path / "playground.log") as base, \
            aiohttp.ClientSession() as session:
        config = await (await session.get(base + "/_internal/v1/config")).json()
        chat = config["config"]["personalChat"]["id"]
        stream = await session.ws_connect(base + "/_ws_conversation/v1/conversations/stream")
        sent = await session.post(f"{base}/_conversation/v1/conversations/{chat}/messages",
                                  json={"from": {"id": config["config"]["currentUser"]["id"]},
                                        "text": "is this real? https://example.com/offer", "textFormat": "plain"})
        assert sent.status == 200
        card: dict[str, Any] | None = None
        while card is None:
            event = (await asyncio.wait_for(stream.receive(), 15)).json()
            if event.get("action") == "createMessage":
                card = event["message"]["attachments"][0]["content"]
        (link,) = _open_urls(card)
        assert link.startswith(f"http://127.0.0.1:{bot_port}/v1/url?url=https%3A%2F%2Fexample.com%2Foffer")
        async with session.get(link, headers={"User-Agent": BROWSER_UA}, allow_redirects=False) as click:
            assert click.status in (200, 302)
        (row,) = await app[SERVICES].db.fetchall("SELECT account_upn, conversation_id FROM clicks")
        assert row["account_upn"] == config["config"]["currentUser"]["email"]
        assert row["conversation_id"] == chat
