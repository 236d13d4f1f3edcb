"""Configuration that cannot silently fail: documented names in every source, unknown keys refused, one
generated reference (README included), and a check that prints the effective configuration redacted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared import settings_reference
from shared.config import Settings, load_settings
from shared.errors import ConfigError
from tests.conftest import run_cli

README = Path(__file__).resolve().parent.parent / "README.md"
APP_ID = "00000000-1111-2222-3333-444444444444"


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFELINKS_DATA_DIR", str(tmp_path / "var"))


def test_readme_table_is_the_generated_reference() -> None:
    """The README's configuration table equals `safelinks config reference --markdown` (regenerate it)."""
    block = settings_reference.readme_block(README.read_text(encoding="utf-8"))
    assert block, "the README lacks the settings reference markers"
    assert block == settings_reference.markdown(), (
        "README settings table is out of date: run `safelinks config reference --markdown` and paste it "
        "between the markers"
    )


def test_every_setting_says_what_it_means() -> None:
    """Every field of the settings model has a description, so the reference documents it."""
    assert settings_reference.undocumented() == []


def test_reference_names_type_and_default_of_each_setting(capsys: pytest.CaptureFixture[str]) -> None:
    """`config reference --json` lists every setting once, with env name, file key, type and default."""
    code, out, _ = run_cli(capsys, "config", "reference", "--json")
    docs = {d["env"]: d for d in json.loads(out)}
    assert code == 0 and len(docs) == len(Settings.model_fields)
    assert docs["SAFELINKS_PORT"] == {"env": "SAFELINKS_PORT", "file_key": "port", "type": "integer (≥ 1, ≤ 65535)",
                                      "default": "`3978`", "meaning": "port `safelinks serve` listens on"}
    assert docs["MicrosoftAppId"]["file_key"] == "MicrosoftAppId"
    assert docs["SAFELINKS_LOG_FORMAT"]["type"] == "one of `text`, `json`"
    assert docs["SAFELINKS_SIGNING_KEYS"]["type"] == "secret"


@pytest.mark.parametrize("key", ["MicrosoftAppId", "microsoft_app_id", "SAFELINKS_MICROSOFT_APP_ID", "microsoftappid"])
def test_bot_framework_names_work_in_a_config_file(tmp_path: Path, key: str) -> None:
    """Bot Framework's documented key names (and the prefixed ones) are read from a YAML file."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"{key}: {APP_ID}\nMicrosoftAppType: SingleTenant\nMicrosoftAppTenantId: t-1\n")
    settings = load_settings(config_file=cfg)
    assert settings.microsoft_app_id == APP_ID and settings.bot_authenticated
    assert settings.microsoft_app_type == "SingleTenant" and settings.microsoft_app_tenant_id == "t-1"


@pytest.mark.parametrize("key", ["port", "SAFELINKS_PORT", "safelinks_port"])
def test_env_names_and_file_keys_both_work_in_a_file(tmp_path: Path, key: str) -> None:
    """A file accepts a setting under its file key or its environment name."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"{key}: 8443\n")
    assert load_settings(config_file=cfg).port == 8443


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("MicrosoftAppld: x\n", "'MicrosoftAppld' (did you mean MicrosoftAppId?)"),
        ("public_ulr: https://x.example\n", "'public_ulr' (did you mean SAFELINKS_PUBLIC_URL?)"),
        ("nonsense: 1\n", "'nonsense'"),
    ],
)
def test_unknown_file_keys_are_refused_by_name(tmp_path: Path, text: str, named: str) -> None:
    """A key in the file that names no setting is an error naming it, not silently dropped."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match="unknown setting") as info:
        load_settings(config_file=cfg)
    assert named in str(info.value)


def test_unknown_environment_variables_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A SAFELINKS_* variable that names no setting is an error naming it."""
    monkeypatch.setenv("SAFELINKS_SIGNNG_KEYS", "k:" + "11" * 32)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == "SAFELINKS_SIGNNG_KEYS: unknown setting (did you mean SAFELINKS_SIGNING_KEYS?)"


def test_config_check_after_the_verb_refuses_unknown_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`config check --config FILE` exits 2 naming the flag and the unknown key."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("MicrosoftAppPasword: x\n")
    code, out, err = run_cli(capsys, "config", "check", "--config", str(cfg))
    assert code == 2 and out == ""
    assert err.startswith("safelinks: error: bad configuration: --config: ") and "'MicrosoftAppPasword'" in err


def test_config_check_prints_effective_settings_with_secrets_redacted(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`config check` shows every setting as the service will use it, and no secret value."""
    secrets = {"SAFELINKS_SIGNING_KEYS": "k1:" + "ab" * 32, "MicrosoftAppPassword": "pa55-w0rd-value",
               "SAFELINKS_API_TOKENS": "tok-one-secret-0123456789abcdefghij,tok-two-secret-0123456789abcdefghij",
               "SAFELINKS_SMTP_PASSWORD": "smtp-secret-x"}
    for key, value in secrets.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SAFELINKS_DATABASE_URL", "postgresql://sl:db-pass-word@db.internal/safelinks")
    monkeypatch.setenv("SAFELINKS_ALERT_WEBHOOK_URLS", "https://hooks.example.com/T0/B0/webhook-token-x,https://siem.example")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"MicrosoftAppId: {APP_ID}\nMicrosoftAppTenantId: {APP_ID}\npublic_url: https://links.contoso.com\n")
    code, out, _ = run_cli(capsys, "config", "check", "--config", str(cfg), "--json")
    body = json.loads(out)
    assert code == 0 and body["ok"] is True
    shown = body["settings"]
    assert set(shown) == {settings_reference.env_name(n) for n in Settings.model_fields}
    assert shown["MicrosoftAppId"] == APP_ID and shown["SAFELINKS_PUBLIC_URL"] == "https://links.contoso.com"
    assert shown["SAFELINKS_SIGNING_KEYS"] == "(set, redacted)"
    assert shown["SAFELINKS_API_TOKENS"] == ["(set, redacted)"] * 2
    assert shown["SAFELINKS_DATABASE_URL"] == "postgresql://sl:***@db.internal/safelinks"
    assert shown["SAFELINKS_ALERT_WEBHOOK_URLS"] == "https://hooks.example.com/(redacted),https://siem.example"
    for value in [*secrets.values(), "db-pass-word", "tok-one-secret", "webhook-token-x"]:
        assert value not in out
    code, text, _ = run_cli(capsys, "config", "check", "--config", str(cfg))
    assert code == 0 and "pa55-w0rd-value" not in text and "configuration is valid" in text


def test_config_check_warns_about_an_unauthenticated_public_bot(capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A public https URL without MicrosoftAppId is valid but flagged."""
    monkeypatch.setenv("SAFELINKS_PUBLIC_URL", "https://links.contoso.com")
    code, out, _ = run_cli(capsys, "config", "check", "--json")
    assert code == 0 and any("MicrosoftAppId is not set" in w for w in json.loads(out)["warnings"])


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("SAFELINKS_SIGNING_KEYS", "k1:abcd", "SAFELINKS_SIGNING_KEYS: signing key 'k1' is shorter"),
        ("SAFELINKS_ALERT_RULES_FILE", "/nonexistent/rules.yaml", "SAFELINKS_ALERT_RULES_FILE: "),
        ("SAFELINKS_POLICY_FILE", "/nonexistent/policies.yaml", "SAFELINKS_POLICY_FILE: "),
        ("SAFELINKS_PORT", "http", "SAFELINKS_PORT: "),
    ],
)
def test_config_check_refuses_what_serve_would(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                               env: str, value: str, named: str) -> None:
    """`config check` exits 2 naming the setting for every problem `serve` would stop on."""
    monkeypatch.setenv(env, value)
    code, out, err = run_cli(capsys, "config", "check")
    assert code == 2 and out == "" and err.startswith(f"safelinks: error: bad configuration: {named}")
