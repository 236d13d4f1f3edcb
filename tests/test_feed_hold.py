"""A refresh that would drop more than half of a feed at once is held until `feeds update NAME --force`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from safelinks.server import create_app
from shared.config import Settings
from shared.verdicts.feed_updater import drop_to_hold
from tests.conftest import TEST_KEYS, run_cli

FULL = "".join(f"host{n}.evil.example\n" for n in range(10)).encode()
CUT = "".join(f"host{n}.evil.example\n" for n in range(4)).encode()  # ends on a line: it still parses


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SAFELINKS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SAFELINKS_SIGNING_KEYS", TEST_KEYS)
    monkeypatch.setenv("SAFELINKS_SIGNING_KEY_ID", "k1")
    return tmp_path


@pytest.mark.parametrize(
    ("previous", "dropped", "held"),
    [(10, 5, False), (10, 6, True), (10, 10, True), (1, 1, True), (0, 0, False), (3, 1, False), (3, 2, True)],
)
def test_more_than_half_is_held(previous: int, dropped: int, held: bool) -> None:
    """Dropping more than half of the entries at once holds the refresh; half or less goes through."""
    assert drop_to_hold(previous, dropped) is held


def _verdict(capsys: pytest.CaptureFixture[str], url: str) -> str:
    code, out, _ = run_cli(capsys, "verdict", "get", url, "--json")
    assert code == 0
    return str(json.loads(out)["verdict"])


async def _healthz(settings: Settings) -> dict[str, Any]:
    from aiohttp.test_utils import TestClient, TestServer

    async with TestClient(TestServer(create_app(settings, role="proxy"))) as client, client.get("/healthz") as r:
        return dict(await r.json())


def test_a_cut_feed_is_held_reported_and_forced(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], make_settings: Callable[..., Settings]) -> None:
    """The good copy keeps protecting; `feeds status` says why, /healthz says held; --force accepts the smaller feed."""
    feed = tmp_path / "list.txt"
    feed.write_bytes(FULL)
    assert run_cli(capsys, "feeds", "add", "local", str(feed), "--format", "plain")[0] == 0
    feed.write_bytes(CUT)
    code, _, err = run_cli(capsys, "feeds", "update", "local")
    assert code == 1 and "held" in err and "drop 6 of 10" in err and "--force" in err
    assert _verdict(capsys, "https://host9.evil.example/") == "malicious"
    code, out, _ = run_cli(capsys, "feeds", "status", "--json")
    [status] = json.loads(out)
    assert status["entries"] == 10 and status["last_error"].startswith("held: ")
    health = asyncio.run(_healthz(make_settings(data_dir=tmp_path / "var")))
    assert health["verdict_sources"]["feeds/local"] == "held"  # status words only; the reason is in `feeds status`
    code, _, err = run_cli(capsys, "feeds", "update", "local", "--force")
    assert code == 0 and "4 entries" in err
    assert _verdict(capsys, "https://host9.evil.example/") != "malicious"
    assert _verdict(capsys, "https://host1.evil.example/") == "malicious"
    code, out, _ = run_cli(capsys, "feeds", "status", "--json")
    assert json.loads(out)[0]["last_error"] is None


async def _audit(settings: Settings) -> list[tuple[str, str, str, str]]:
    from shared.store import open_database

    db = await open_database(settings.effective_database_url)
    try:
        rows = await db.fetchall("SELECT * FROM audit_log ORDER BY id")
    finally:
        await db.close()
    return [(r["via"], r["actor"], r["action"], r["target"]) + ((r["detail"],) if r["detail"] else ()) for r in rows]


def test_feed_changes_at_the_command_line_are_audited(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], make_settings: Callable[..., Settings]) -> None:
    """feeds add, update --force (applied), disable, enable and remove are each audited as the account that ran
    them; a held or plain update changes nothing and records nothing."""
    from safelinks.cli.context import CLI_ACTOR

    feed = tmp_path / "list.txt"
    feed.write_bytes(FULL)
    assert run_cli(capsys, "feeds", "add", "local", str(feed), "--format", "plain", "--every", "1h")[0] == 0
    feed.write_bytes(CUT)
    assert run_cli(capsys, "feeds", "update", "local")[0] == 1  # held
    assert run_cli(capsys, "feeds", "update", "local", "--force")[0] == 0
    for verb in ("disable", "enable", "remove"):
        assert run_cli(capsys, "feeds", verb, "local")[0] == 0
    who = CLI_ACTOR.id
    assert asyncio.run(_audit(make_settings(data_dir=tmp_path / "var"))) == [
        ("cli", who, "feed.add", "local", f"plain {feed} every 1h"),
        ("cli", who, "feed.update.force", "local", "10 entries before, 4 now"),
        ("cli", who, "feed.disable", "local"), ("cli", who, "feed.enable", "local"),
        ("cli", who, "feed.remove", "local")]
