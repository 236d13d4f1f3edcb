"""A service to run and upgrade: the serve banner (after the port is bound), a busy port in one line,
JSON logs with request ids, the access log, migrations listed before and logged when applied."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from safelinks.server import create_app
from safelinks.version import installed_version
from shared.config import Settings
from shared.store.migrations import available
from tests.conftest import BROWSER_UA, run_cli
from tests.processes import free_port


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFELINKS_", "Microsoft"))}
    env.update({"SAFELINKS_DATA_DIR": str(data_dir), **extra})
    return env


@dataclass
class Served:
    base: str
    stdout: str
    log: list[dict[str, object]]


def _get(url: str, headers: dict[str, str]) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One `safelinks serve` with JSON logs and the access log, asked a few things, then stopped."""
    tmp = tmp_path_factory.mktemp("served")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = _env(tmp, SAFELINKS_PORT=str(port), SAFELINKS_LOG_FORMAT="json", SAFELINKS_ACCESS_LOG="true",
               SAFELINKS_ADMINS="aad-1,aad-2", SAFELINKS_API_TOKENS="t" * 32)
    proc = subprocess.Popen([sys.executable, "-m", "safelinks", "serve"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if _get(f"{base}/healthz", {}) == 200:
                    break
            except OSError:
                time.sleep(0.1)
        _get(f"{base}/v1/url?url=https%3A%2F%2Fexample.com%2F&data=x&sig=y", {
            "User-Agent": BROWSER_UA, "X-Request-Id": "req-from-the-balancer-1"})
        _get(f"{base}/privacy", {"User-Agent": BROWSER_UA})
        _get(f"{base}/no%0Aline%20break?q=1", {"User-Agent": BROWSER_UA})
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    lines = [line for line in err.splitlines() if line.strip()]
    yield Served(base, out, [json.loads(line) for line in lines])


def test_banner_says_what_the_process_runs_with(served: Served) -> None:
    """The banner gives version, address, key source, demo feed, admins, channel, tokens and policy file."""
    out = served.stdout
    assert out.splitlines()[0] == f"teams-safelinks {installed_version()} (all) listening on {served.base}"
    for expected in ("signing key:      generated, stored in the database (active key g",
                     "demo feed:        on", "admins:           2 set", "API tokens:       1 set",
                     "security channel: NOT SET", "policy file:      none (Built-in protection)",
                     "LOCAL UNAUTHENTICATED", "try a link:       " + served.base + "/v1/url?"):
        assert expected in out, expected


def test_json_logs_are_one_object_per_line(served: Served) -> None:
    """With SAFELINKS_LOG_FORMAT=json every stderr line is a JSON object with time, level, logger, message."""
    assert served.log and all({"time", "level", "logger", "message"} <= set(e) for e in served.log)


def test_serve_logs_the_migrations_it_applies(served: Served) -> None:
    """Each migration applied at start is logged by name."""
    applied = [e["message"] for e in served.log if str(e["message"]).startswith("applied migration")]
    assert applied == [f"applied migration {name}" for _, name, _ in available()]


def test_request_ids_join_log_lines_of_one_request(served: Served) -> None:
    """A load balancer's X-Request-Id is carried by the lines logged while handling that request."""
    tagged = [e for e in served.log if e.get("request_id") == "req-from-the-balancer-1"]
    loggers = {e["logger"] for e in tagged}
    assert "safelinks.access" in loggers and len(loggers) >= 2, tagged


def test_access_log_keeps_least_data(served: Served) -> None:
    """The access log has method, path without query, status and time, and an anonymised address."""
    access = [e for e in served.log if e["logger"] == "safelinks.access"]
    click = next(e for e in access if e["path"] == "/v1/url")
    assert click["method"] == "GET" and click["status"] == 400 and float(str(click["duration_ms"])) >= 0
    assert click["remote"] == "127.0.0.0"
    assert all("example.com" not in json.dumps(e) for e in access)
    assert any(e["path"] == "/privacy" and e["status"] == 200 for e in access)
    assert any(e["path"] == "/no%0Aline%20break" and e["status"] == 404 for e in access)  # kept encoded


def test_busy_port_is_one_clear_line(tmp_path: Path) -> None:
    """`serve` on a port in use exits 2 with one line naming the address, and no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "safelinks", "serve"], capture_output=True, text=True,
                              timeout=60, env=_env(tmp_path, SAFELINKS_PORT=str(port)))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (f"safelinks: error: cannot listen on 127.0.0.1:{port}: the port is already in "
                                   "use (another safelinks, or set SAFELINKS_PORT / --port)")


def test_migrate_dry_run_lists_and_changes_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`migrate --dry-run` lists every pending migration and creates nothing; `migrate` then applies them."""
    monkeypatch.setenv("SAFELINKS_DATA_DIR", str(tmp_path))
    names = [name for _, name, _ in available()]
    code, out, _ = run_cli(capsys, "migrate", "--dry-run")
    assert code == 0 and out.split() == ["pending", "migrations:", *names]
    tables = sqlite3.connect(tmp_path / "safelinks.db").execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == []
    code, out, _ = run_cli(capsys, "migrate", "--json")
    assert code == 0 and json.loads(out)["applied"] == names
    code, out, _ = run_cli(capsys, "migrate", "--dry-run")
    assert code == 0 and out.strip() == "no pending migrations"


async def test_metrics_reference_covers_every_metric(make_settings: Callable[..., Settings]) -> None:
    """Every metric /metrics exposes is described in docs/deployment.md's metrics reference."""
    docs = (Path(__file__).resolve().parent.parent / "docs" / "deployment.md").read_text()
    reference = docs[docs.index("## Metrics and alerting"):docs.index("## Troubleshooting")]
    client = TestClient(TestServer(create_app(make_settings()), host="127.0.0.1"))
    await client.start_server()
    try:
        await client.get("/v1/url?url=x", headers={"User-Agent": BROWSER_UA})  # a rejected request counts
        text = await (await client.get("/metrics")).text()
    finally:
        await client.close()
    exposed = set(re.findall(r"^# TYPE (safelinks_\w+) ", text, re.M))
    assert exposed and {m for m in exposed if m not in reference} == set()


def test_sigterm_right_after_start_stops_the_service(tmp_path: Path) -> None:
    """A SIGTERM that arrives as the banner is printed stops `serve` at once (it was sometimes lost)."""
    for attempt in range(4):
        env = _env(tmp_path / f"run{attempt}", SAFELINKS_PORT=str(free_port()))
        proc = subprocess.Popen([sys.executable, "-m", "safelinks", "serve"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        try:
            assert proc.stdout is not None
            line = ""
            while "try a link" not in line:
                line = proc.stdout.readline()
                assert line, "serve ended before its banner did"
            proc.terminate()
            assert proc.wait(20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
