"""The command line: alerts list|show|resolve|replay, incidents list|show, outbox list, with --json."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from safelinks.cli import main
from safelinks.cli.context import CLI_ACTOR
from shared.config import load_settings
from shared.services import open_services
from tests.alerts_harness import click
from tests.conftest import TEST_KEYS


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, both_backends: str) -> Path:
    for key, value in {"SAFELINKS_DATA_DIR": str(tmp_path), "SAFELINKS_DATABASE_URL": both_backends,
                       "SAFELINKS_SIGNING_KEYS": TEST_KEYS,
                       "SAFELINKS_SIGNING_KEY_ID": "k1", "SAFELINKS_ALERT_EMAIL_TO": "soc@contoso.com"}.items():
        monkeypatch.setenv(key, value)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out + captured.err


def _seed(tmp_path: Path) -> None:
    async def go() -> None:
        settings = load_settings(data_dir=tmp_path, signing_keys=TEST_KEYS, signing_key_id="k1")
        async with open_services(settings, background=False) as services:
            now = datetime.now(UTC)
            await services.clicks.record(click(now - timedelta(hours=2), through=True))
            await services.clicks.record(click(now - timedelta(days=9), through=True, user="old@contoso.com"))

    asyncio.run(go())


def test_replay_is_a_dry_run_unless_applied(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``alerts replay`` shows would-be alerts and stores none; ``--apply`` stores them exactly once, audited
    (in the transaction that stores them) as the account that ran it."""
    _seed(env)
    code, out = run(capsys, "alerts", "replay", "--since", "7d", "--json")
    dry = json.loads(out)
    assert code == 0 and (dry["matched"], dry["new"], dry["created"]) == (2, 2, [])
    assert json.loads(run(capsys, "alerts", "list", "--json")[1])["@odata.count"] == 0
    applied = json.loads(run(capsys, "alerts", "replay", "--since", "7d", "--apply", "--json")[1])
    assert len(applied["created"]) == 2
    again = json.loads(run(capsys, "alerts", "replay", "--since", "7d", "--apply", "--json")[1])
    assert (again["new"], again["created"]) == (0, [])
    assert [(a["via"], a["actor"], a["action"]) for a in _audit(env)] == [("cli", CLI_ACTOR.id, "alerts.replay")]


def _audit(tmp_path: Path) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        settings = load_settings(data_dir=tmp_path, signing_keys=TEST_KEYS, signing_key_id="k1")
        async with open_services(settings, background=False) as services:
            return await services.db.fetchall("SELECT * FROM audit_log ORDER BY id")

    return asyncio.run(go())


def test_list_show_resolve_and_incidents(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The listings print the API's JSON shapes; resolve records who did it; outbox list shows the e-mails."""
    _seed(env)
    run(capsys, "alerts", "replay", "--since", "7d", "--apply")
    listed: dict[str, Any] = json.loads(run(capsys, "alerts", "list", "--json")[1])
    assert listed["@odata.count"] == 2
    alert_id = listed["value"][0]["id"]
    shown = json.loads(run(capsys, "alerts", "show", alert_id, "--json")[1])
    assert shown == listed["value"][0]
    code, out = run(capsys, "alerts", "show", alert_id)
    assert code == 0 and "urlEvidence" in out and "adele@contoso.com" in out
    code, out = run(capsys, "alerts", "resolve", alert_id, "--comment", "user warned", "--by", "ana",
                    "--classification", "truePositive")
    assert code == 0 and f"alert {alert_id} resolved" in out
    resolved = json.loads(run(capsys, "alerts", "show", alert_id, "--json")[1])
    assert (resolved["status"], resolved["classification"]) == ("resolved", "truePositive")
    assert resolved["comments"][0]["createdByDisplayName"] == "ana"
    assert json.loads(run(capsys, "alerts", "list", "--status", "resolved", "--json")[1])["@odata.count"] == 1
    incidents = json.loads(run(capsys, "incidents", "list", "--json")[1])
    assert incidents["@odata.count"] == 1
    incident = json.loads(run(capsys, "incidents", "show", incidents["value"][0]["id"], "--json")[1])
    assert len(incident["alerts"]) == 2
    code, out = run(capsys, "outbox", "list")
    assert code == 0 and out.count("soc@contoso.com") == 2 and "email" in out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("alerts", "show", "99"), "no alert 99"),
        (("incidents", "show", "99"), "no incident 99"),
        (("alerts", "resolve", "99"), "no alert 99"),
        (("alerts", "list", "--status", "closed"), "unknown status 'closed'"),
        (("alerts", "replay", "--since", "soon"), "--since 'soon'"),
    ],
)
def test_bad_input_exits_non_zero_with_a_reason(env: Path, capsys: pytest.CaptureFixture[str],
                                                argv: tuple[str, ...], says: str) -> None:
    """Unknown ids and bad options exit non-zero and say why."""
    code, out = run(capsys, *argv)
    assert code != 0 and says in out
