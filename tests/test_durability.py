"""Nothing acknowledged is lost: a click answered with a redirect survives SIGKILL of the server."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from shared.clicks import Workload
from shared.signing import Keyring, LinkContext, LinkSigner
from tests.conftest import BROWSER_UA, TEST_KEYS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"server exited with {proc.returncode}: {err}")
            try:
                async with http.get(f"{base}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError("server did not become healthy")


async def test_redirected_clicks_survive_sigkill(tmp_path: Path) -> None:
    """Every click that got its 302 before the process was SIGKILLed is in the store afterwards."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "SAFELINKS_DATA_DIR": str(tmp_path), "SAFELINKS_PORT": str(port),
           "SAFELINKS_SIGNING_KEYS": TEST_KEYS, "SAFELINKS_SIGNING_KEY_ID": "k1", "SAFELINKS_PUBLIC_URL": base,
           "SAFELINKS_LOG_LEVEL": "warning"}
    proc = subprocess.Popen([sys.executable, "-m", "safelinks", "serve", "--role", "proxy"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        await wait_healthy(base, proc)
        signer = LinkSigner(Keyring.parse(TEST_KEYS, "k1"), base)
        answered: list[int] = []
        killed = asyncio.Event()

        async def one(http: aiohttp.ClientSession, n: int) -> None:
            link = signer.wrap(f"https://example.com/item/{n}", LinkContext(workload=Workload.TEAMS,
                                                                              recipient="alice@contoso.com"))
            async with http.get(link, allow_redirects=False, headers={"User-Agent": BROWSER_UA}) as r:
                if r.status == 302:
                    answered.append(n)
                    if len(answered) == 150 and not killed.is_set():
                        os.kill(proc.pid, signal.SIGKILL)
                        killed.set()

        connector = aiohttp.TCPConnector(limit=32)
        async with aiohttp.ClientSession(connector=connector) as http:
            await asyncio.gather(*(one(http, n) for n in range(2000)), return_exceptions=True)
        assert killed.is_set(), "the server was never killed"
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    db = sqlite3.connect(tmp_path / "safelinks.db")
    stored = {row[0] for row in db.execute("SELECT url FROM clicks WHERE action_type = 'ClickAllowed'")}
    missing = [n for n in answered if f"https://example.com/item/{n}" not in stored]
    assert len(answered) >= 150 and missing == []


async def test_serve_prints_where_it_listens_and_a_sample_link(tmp_path: Path) -> None:
    """`safelinks serve` says where it listens and where its key comes from, and prints a working wrapped link."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "SAFELINKS_DATA_DIR": str(tmp_path), "SAFELINKS_PORT": str(port),
           "SAFELINKS_LOG_LEVEL": "warning"}
    env.pop("SAFELINKS_SIGNING_KEYS", None)
    proc = subprocess.Popen([sys.executable, "-m", "safelinks", "serve"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        await wait_healthy(base, proc)
        assert proc.stdout is not None
        lines = [proc.stdout.readline()]
        while "try a link:" not in lines[-1] and lines[-1]:
            lines.append(proc.stdout.readline())
        assert f"listening on {base}" in lines[0]
        assert any("signing key:" in line and "generated, stored in the database" in line for line in lines)
        sample = next(line.split("try a link:")[1].strip() for line in lines if "try a link:" in line)
        async with aiohttp.ClientSession() as http, http.get(
            sample, allow_redirects=False, headers={"User-Agent": BROWSER_UA}
        ) as r:
            assert r.status == 302 and r.headers["Location"] == "https://www.example.com/"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_bad_configuration_exits_non_zero_naming_the_key(tmp_path: Path) -> None:
    """`safelinks serve` with a bad setting exits 2 and names it, before listening."""
    env = {**os.environ, "SAFELINKS_DATA_DIR": str(tmp_path), "SAFELINKS_PORT": "not-a-port"}
    done = subprocess.run([sys.executable, "-m", "safelinks", "serve"], env=env, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2 and "SAFELINKS_PORT" in done.stderr
