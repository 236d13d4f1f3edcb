"""`safelinks feeds …` and `safelinks verdict get` with feed and heuristic verdicts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import TEST_KEYS, run_cli
from tests.feed_fixtures import DATA


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SAFELINKS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SAFELINKS_SIGNING_KEYS", TEST_KEYS)
    monkeypatch.setenv("SAFELINKS_SIGNING_KEY_ID", "k1")
    monkeypatch.setenv("SAFELINKS_FEED_ALLOW_PRIVATE", "true")
    return tmp_path


run = run_cli


@pytest.fixture
def http_feed() -> Iterator[str]:
    """A feed on 127.0.0.1 with a Content-Length, so the progress bar knows the size."""
    body = (DATA / "urlhaus.csv").read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", '"v1"')
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/urlhaus.csv"
    finally:
        server.shutdown()


def test_add_imports_and_verdict_get_names_the_feed(capsys: pytest.CaptureFixture[str]) -> None:
    """feeds add imports the feed; verdict get --json shows verdict, source and reasons from it."""
    code, out, err = run(capsys, "feeds", "add", "local", str(DATA / "plain.txt"), "--format", "plain",
                         "--every", "30m")
    assert code == 0 and "added feed local (plain, every 30m)" in out and "5 entries" in err
    code, out, _ = run(capsys, "verdict", "get", "https://www.evil.example/x", "--json")
    body = json.loads(out)
    assert code == 0 and body["verdict"] == "malicious" and body["source"] == "feed:local"
    assert body["reasons"] == ["listed by feed local as malicious: evil.example/"]


def test_verdict_get_shows_heuristics_and_the_demo_feed(capsys: pytest.CaptureFixture[str]) -> None:
    """Without feeds, the demo host is malicious by the demo feed and a look-alike suspicious by heuristics."""
    _, out, _ = run(capsys, "verdict", "get", "http://malicious.safelinks.invalid/", "--json")
    assert json.loads(out)["source"] == "feed:demo"
    _, out, _ = run(capsys, "verdict", "get", "https://paypa1.com/login", "--json")
    body = json.loads(out)
    assert body["verdict"] == "suspicious" and body["source"] == "heuristics"
    assert any("look-alike of protected domain paypal.com" in r for r in body["reasons"])


def test_update_with_progress_bar_list_and_status(capsys: pytest.CaptureFixture[str], http_feed: str) -> None:
    """update draws a progress bar on stderr; list and status show the feed, status --json its counts."""
    assert run(capsys, "feeds", "add", "uh", http_feed, "--format", "urlhaus", "--no-update")[0] == 0
    code, _, err = run(capsys, "feeds", "update", "uh", "--progress")
    assert code == 0 and "uh [" in err and "#" * 30 in err and "MB" in err and "4 entries" in err
    code, out, _ = run(capsys, "feeds", "list")
    assert code == 0 and "uh" in out and "urlhaus" in out and "1h" in out
    code, out, _ = run(capsys, "feeds", "status", "--json")
    [status] = json.loads(out)
    assert status["entries"] == 4 and status["bad_lines"] == 1 and status["last_error"] is None
    assert status["age_seconds"] is not None and status["hits_24h"] == 0
    code, out, _ = run(capsys, "feeds", "status")
    assert code == 0 and "Hits 24h" in out


def test_failed_update_exits_1_and_keeps_copy(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A feed that turns into garbage fails the update (exit 1), keeps entries, and shows the error."""
    feed = tmp_path / "f.txt"
    feed.write_bytes(b"evil.example\n")
    assert run(capsys, "feeds", "add", "f", str(feed), "--format", "plain")[0] == 0
    feed.write_bytes(b"<html><body>oops</body></html>")
    code, _, err = run(capsys, "feeds", "update")
    assert code == 1 and "keeping the last good copy" in err
    _, out, _ = run(capsys, "feeds", "status", "--json")
    [status] = json.loads(out)
    assert status["entries"] == 1 and "HTML" in status["last_error"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["feeds", "add", "x", "f.csv", "--format", "csv"], "--column"),
        (["feeds", "add", "bad name", "f.txt", "--format", "plain"], "feed name"),
        (["feeds", "add", "x", "f.txt", "--format", "plain", "--every", "soon"], "interval"),
        (["feeds", "remove", "nope"], "no feed named"),
        (["feeds", "update", "nope"], "no feed named"),
    ],
)
def test_bad_input_exits_2_with_reason(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    """Bad feed definitions and unknown names exit 2 and say why."""
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err


def test_remove_and_disable(capsys: pytest.CaptureFixture[str]) -> None:
    """A removed or disabled feed stops being listed as enabled."""
    run(capsys, "feeds", "add", "a", str(DATA / "plain.txt"), "--format", "plain", "--no-update")
    assert run(capsys, "feeds", "disable", "a")[0] == 0
    _, out, _ = run(capsys, "feeds", "list", "--json")
    assert json.loads(out)[0]["enabled"] is False
    assert run(capsys, "feeds", "remove", "a")[0] == 0
    _, out, _ = run(capsys, "feeds", "list", "--json")
    assert json.loads(out) == []
