"""The CLI, consistent: --json on every command that changes something, one error form naming the flag
typed, the subcommand's usage on its errors, --config after the verb, formats listed in help."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from safelinks.cli import build_parser, leaf_parsers
from safelinks.version import installed_version
from tests.conftest import TEST_KEYS, run_cli


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SAFELINKS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SAFELINKS_SIGNING_KEYS", TEST_KEYS)
    monkeypatch.setenv("SAFELINKS_SIGNING_KEY_ID", "k1")
    monkeypatch.setenv("SAFELINKS_PUBLIC_URL", "https://links.contoso.com")
    monkeypatch.setenv("SAFELINKS_FEED_DEMO", "false")
    return tmp_path


def _leaves() -> dict[str, argparse.ArgumentParser]:
    return {leaf.prog.removeprefix("safelinks "): leaf for leaf in leaf_parsers(build_parser())}


CHANGING = ["wrap", "block add", "block remove", "allow add", "allow remove", "verdict set", "feeds add",
            "feeds update", "feeds remove", "feeds enable", "feeds disable", "clicks purge", "migrate",
            "alerts resolve", "alerts replay", "privacy erase", "privacy purge"]


@pytest.mark.parametrize("command", CHANGING)
def test_every_changing_command_takes_json(command: str) -> None:
    """Each command that changes something accepts --json."""
    leaf = _leaves()[command]
    assert "--json" in {opt for action in leaf._actions for opt in action.option_strings}


def test_config_is_accepted_after_every_verb() -> None:
    """--config FILE is accepted after the verb of every command, as before it."""
    missing = [name for name, leaf in _leaves().items()
               if "--config" not in {opt for a in leaf._actions for opt in a.option_strings}]
    assert missing == []


def _feed_file(tmp_path: Path) -> Path:
    path = tmp_path / "feed.txt"
    path.write_text("http://bad.example/login\nhttp://worse.example/\n")
    return path


@pytest.mark.parametrize(
    ("argv", "keys"),
    [
        (["wrap", "https://example.com/"], {"link", "url"}),
        (["block", "add", "contoso-phish.com"], {"results"}),
        (["allow", "add", "partner.example.com"], {"results"}),
        (["verdict", "set", "evil.example", "malicious"], {"verdict", "expression", "changed"}),
        (["clicks", "purge", "--older-than", "30d"], {"deleted", "older_than"}),
        (["migrate", "--dry-run"], {"pending", "applied"}),
        (["feeds", "add", "local", "{feed}", "--format", "plain"], {"name", "update"}),
    ],
)
def test_json_output_of_changing_commands(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                          argv: list[str], keys: set[str]) -> None:
    """With --json a changing command prints one JSON object saying what it did."""
    argv = [a.replace("{feed}", str(_feed_file(tmp_path))) for a in argv]
    code, out, _ = run_cli(capsys, *argv, "--json")
    body = json.loads(out)
    assert code == 0 and body["ok"] is True and keys <= set(body)


def test_feed_lifecycle_in_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """feeds add/update/disable/enable/remove each answer one JSON object with --json."""
    assert run_cli(capsys, "feeds", "add", "f", str(_feed_file(tmp_path)), "--format", "plain", "--json")[0] == 0
    for argv, key in ((["update", "f"], "results"), (["disable", "f"], "enabled"), (["enable", "f"], "enabled"),
                      (["remove", "f"], "removed")):
        code, out, _ = run_cli(capsys, "feeds", *argv, "--json")
        assert code == 0 and key in json.loads(out), argv


@pytest.mark.parametrize(
    ("argv", "usage", "said"),
    [
        (["feeds", "add", "x"], "usage: safelinks feeds add", "the following arguments are required"),
        (["clicks", "list", "--sinse", "7d"], "usage: safelinks clicks list", "unrecognized arguments: --sinse"),
        (["verdict", "set", "evil.example", "malicious", "--bogus"], "usage: safelinks verdict set", "--bogus"),
        (["feeds", "add", "x", "y", "--format", "xml"], "usage: safelinks feeds add", "argument --format"),
        (["nosuchcommand"], "usage: safelinks ", "invalid choice"),
    ],
)
def test_usage_errors_show_the_subcommand_usage(capsys: pytest.CaptureFixture[str], argv: list[str], usage: str,
                                                said: str) -> None:
    """A mistyped command prints its own subcommand's usage and one `safelinks: error:` line, exit 2."""
    code, out, err = run_cli(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and err.startswith(usage)
    assert lines[-1].startswith("safelinks: error: ") and said in lines[-1]
    assert sum("error:" in line for line in lines) == 1


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["serve", "--port", "70000"], "--port: "),
        (["clicks", "purge", "--older-than", "soon"], "--older-than 'soon'"),
        (["clicks", "list", "--since", "soon"], "--since 'soon'"),
        (["block", "add", "x.example", "--expires", "tomorrow"], "--expires 'tomorrow'"),
        (["feeds", "add", "f", "/x", "--format", "plain", "--every", "often"], "--every: interval: duration 'often'"),
        (["wrap", "https://example.com/", "--workload", "Fax"], "--workload: "),
        (["alerts", "list", "--status", "wat"], "--status: "),
    ],
)
def test_errors_name_the_flag_typed(capsys: pytest.CaptureFixture[str], argv: list[str], flag: str) -> None:
    """A bad value given on the command line is reported under the flag the user typed, after the usage of
    that subcommand, as argparse's own errors are."""
    code, _, err = run_cli(capsys, *argv)
    lines = err.strip().splitlines()
    command = " ".join(a for a in argv[:2] if not a.startswith(("-", "http")))
    assert code == 2 and lines[0].startswith(f"usage: safelinks {command}")
    assert lines[-1].startswith("safelinks: error: ") and flag in lines[-1]
    assert "SAFELINKS_PORT" not in err


def test_config_after_the_verb(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """`wrap URL --config FILE` reads the file just as `--config FILE wrap URL` does."""
    monkeypatch.delenv("SAFELINKS_PUBLIC_URL")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("public_url: https://from-file.example\n")
    _, before, _ = run_cli(capsys, "--config", str(cfg), "wrap", "https://example.com/")
    code, after, _ = run_cli(capsys, "wrap", "https://example.com/", "--config", str(cfg))
    assert code == 0 and after.startswith("https://from-file.example/v1/url?") and before.startswith(
        "https://from-file.example/v1/url?")


@pytest.mark.parametrize("source", ["{tmp}/no-such-feed.txt", "http://127.0.0.1:9/feed.txt"])
def test_feeds_add_of_an_unreadable_source(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    """feeds add of a source that cannot be read says so once, exits non-zero, and keeps no feed."""
    monkeypatch.setenv("SAFELINKS_FEED_ALLOW_PRIVATE", "true")
    source = source.replace("{tmp}", str(tmp_path))
    code, out, err = run_cli(capsys, "feeds", "add", "broken", source, "--format", "plain", "--no-progress")
    assert code == 1 and out == ""
    assert err.count("broken") == 1 and err.startswith("safelinks: error: feed broken not added: cannot read")
    code, out, _ = run_cli(capsys, "feeds", "list", "--json")
    assert code == 0 and json.loads(out) == []


@pytest.mark.parametrize("text", ["hello world", "example.com", "", "www.example.com/x", "mailto:a@b.example"])
def test_wrap_refuses_what_is_not_a_url(capsys: pytest.CaptureFixture[str], text: str) -> None:
    """wrap refuses anything but an absolute http(s) URL, with exit 2 and the prefix."""
    code, out, err = run_cli(capsys, "wrap", text)
    assert code == 2 and out == "" and err.startswith("usage: safelinks wrap")
    assert err.strip().splitlines()[-1].startswith("safelinks: error: ")


def test_help_lists_every_accepted_choice() -> None:
    """Every option with a fixed set of values lists each value in its command's help."""
    missing = []
    for name, leaf in _leaves().items():
        text = leaf.format_help()
        for action in leaf._actions:
            if action.choices and not isinstance(action, argparse._SubParsersAction):
                missing += [f"{name} {action.option_strings}: {c}" for c in action.choices if str(c) not in text]
    assert missing == []


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`safelinks --version` prints the installed version."""
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"teams-safelinks {installed_version()}" and installed_version()[0].isdigit()
