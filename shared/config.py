"""The one settings model: every knob of teams-safelinks, read once from the environment or a file.

Environment variables carry the prefix ``SAFELINKS_`` (``SAFELINKS_PORT=8080``), except Bot Framework's
own names, which keep theirs (``MicrosoftAppId``, ``MicrosoftAppPassword``, ``MicrosoftAppType``,
``MicrosoftAppTenantId``). A YAML file named by ``SAFELINKS_CONFIG_FILE`` (or ``--config``) supplies
defaults; the environment wins over the file. Nothing else in the project reads ``os.environ``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from shared.verdicts.heuristics import HeuristicsConfig

Role = Literal["all", "bot", "proxy", "worker", "console"]


class ConfigError(Exception):
    """The configuration is invalid; the message names the offending key."""


def _bf(name: str, prefixed: str) -> Any:
    # Bot Framework settings keep their SDK names; the prefixed spelling is accepted too.
    return Field(default="", validation_alias=AliasChoices(name, prefixed, prefixed.lower()))


class Settings(BaseSettings):
    """All configuration. Field names map to ``SAFELINKS_<NAME>`` environment variables."""

    model_config = SettingsConfigDict(
        env_prefix="SAFELINKS_",
        extra="ignore",
        populate_by_name=True,
        case_sensitive=False,
    )

    config_file: Path | None = None

    # Where it runs.
    host: str = "127.0.0.1"
    port: int = Field(default=3978, ge=1, le=65535)
    public_url: str = ""
    role: Role = "all"
    data_dir: Path = Path("./var")
    database_url: str = ""
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # Link signing: "kid:secret" pairs, comma separated; secrets are base64url or hex, >= 16 bytes.
    signing_keys: SecretStr = SecretStr("")
    signing_key_id: str = ""
    link_max_age_days: int = Field(default=0, ge=0)  # 0: wrapped links never expire

    # Click handling.
    policy_file: Path | None = None
    anonymize_ip: bool = True
    trust_forwarded_for: bool = False
    click_retention_days: int = Field(default=30, ge=1)
    click_through_token_ttl: int = Field(default=600, ge=30, le=3600)
    verdict_cache_ttl: float = Field(default=30.0, ge=0)
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    db_unavailable: Literal["error-page", "wait"] = "error-page"

    # People and API access.
    admins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    api_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)

    # Bot Framework identity and channel endpoints.
    microsoft_app_id: str = _bf("MicrosoftAppId", "SAFELINKS_MICROSOFT_APP_ID")
    microsoft_app_password: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("MicrosoftAppPassword", "SAFELINKS_MICROSOFT_APP_PASSWORD"),
    )
    microsoft_app_type: Literal["MultiTenant", "SingleTenant", "UserAssignedMSI"] = Field(
        default="MultiTenant",
        validation_alias=AliasChoices("MicrosoftAppType", "SAFELINKS_MICROSOFT_APP_TYPE"),
    )
    microsoft_app_tenant_id: str = _bf("MicrosoftAppTenantId", "SAFELINKS_MICROSOFT_APP_TENANT_ID")
    to_bot_from_channel_openid_metadata_url: str = ""
    to_bot_from_channel_token_issuer: str = ""
    to_channel_from_bot_login_url: str = ""
    to_channel_from_bot_oauth_scope: str = ""
    oauth_url: str = ""
    evidence_snippet_chars: int = Field(default=200, ge=0, le=4000)

    # Alerts: rules, incidents and where notifications go (shared/alerts). Lists are comma separated.
    alert_rules_file: Path | None = None
    security_channel: str = ""
    incident_window_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    incident_max_alerts: int = Field(default=150, ge=1, le=10_000)
    alert_email_to: str = ""
    alert_email_daily_limit: int = Field(default=100, ge=0)
    alert_webhook_urls: str = ""
    alert_webhook_secret: SecretStr = SecretStr("")
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "safelinks@localhost"
    smtp_timeout: float = Field(default=30.0, gt=0)

    # Verdict sources: threat feeds, heuristics, URL scans, Google Safe Browsing.
    feed_every_default: float = Field(default=3600.0, ge=60.0)
    feed_timeout: float = Field(default=300.0, gt=0)
    feed_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    feed_allow_private: bool = False
    feed_demo: bool = True
    heuristics_enabled: bool = True
    heuristics: HeuristicsConfig = Field(default_factory=HeuristicsConfig)
    tenant_domains: Annotated[list[str], NoDecode] = Field(default_factory=list)
    scan_api_url: str = ""
    scan_api_key: SecretStr = SecretStr("")
    scan_visibility: Literal["public", "unlisted", "private"] = "private"
    scan_poll_interval: float = Field(default=2.0, gt=0)
    scan_timeout: float = Field(default=120.0, gt=0)
    scan_result_ttl: float = Field(default=86400.0, gt=0)
    scan_allow_private: bool = False
    safebrowsing_mode: Literal["off", "update", "lookup"] = "off"
    safebrowsing_api_key: SecretStr = SecretStr("")
    safebrowsing_url: str = "https://safebrowsing.googleapis.com"
    safebrowsing_client_id: str = "teams-safelinks"
    safebrowsing_threat_types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["MALWARE", "SOCIAL_ENGINEERING", "UNWANTED_SOFTWARE",
                                 "POTENTIALLY_HARMFUL_APPLICATION"]
    )

    # Replicas and privacy (shared/schedule.py, shared/privacy.py): how long a delivery claim lasts
    # before another worker may take the item over, and how long each kind of record is kept.
    outbox_lease_seconds: float = Field(default=60.0, ge=1.0, le=3600.0)
    message_retention_days: int = Field(default=30, ge=1)
    alert_retention_days: int = Field(default=180, ge=1)
    outbox_retention_days: int = Field(default=7, ge=1)
    retention_every_hours: float = Field(default=6.0, gt=0, le=24 * 7)

    # The analyst console (console/): sessions, and OpenID Connect sign-in (Entra ID, Keycloak, Dex...).
    # Without an OIDC metadata URL, only the one-time links of ``safelinks console link`` sign in.
    console_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    console_session_hours: int = Field(default=12, ge=1, le=24 * 7)
    console_oidc_metadata_url: str = ""
    console_oidc_client_id: str = ""
    console_oidc_client_secret: SecretStr = SecretStr("")
    console_oidc_scopes: str = "openid profile email"
    console_oidc_admin_role: str = "SafeLinks.Admin"
    console_oidc_reader_role: str = "SafeLinks.Reader"

    @field_validator("scan_api_url", "safebrowsing_url", "console_oidc_metadata_url")
    @classmethod
    def _service_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("safebrowsing_api_key")
    @classmethod
    def _safebrowsing_key(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        if info.data.get("safebrowsing_mode", "off") != "off" and not value.get_secret_value():
            raise ValueError(f"required when SAFELINKS_SAFEBROWSING_MODE is {info.data['safebrowsing_mode']}")
        return value

    @field_validator("admins", "api_tokens", "tenant_domains", "safebrowsing_threat_types", mode="before")
    @classmethod
    def _split_csv(cls, value: Any) -> Any:
        # Lists come from the environment as "a,b" (or a JSON array); from YAML as lists.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:", "postgresql://", "postgres://")):
            raise ValueError("must be sqlite:///PATH or postgresql://...")
        return value

    @model_validator(mode="after")
    def _derived(self) -> Settings:
        if not self.public_url:
            shown = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
            self.public_url = f"http://{shown}:{self.port}"
        return self

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'safelinks.db').as_posix()}"

    @property
    def bot_authenticated(self) -> bool:
        return bool(self.microsoft_app_id)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlFileSource(settings_cls, env_settings))


class _YamlFileSource(PydanticBaseSettingsSource):
    """Values from the YAML file named by ``config_file`` (given directly or in the environment)."""

    def __init__(self, settings_cls: type[BaseSettings], env: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._env = env

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = self.current_state.get("config_file") or self._env().get("config_file")
        if not path:
            return {}
        file = Path(path)
        try:
            raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ConfigError(f"config_file: cannot read {file}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config_file: {file} is not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"config_file: {file} must hold a mapping of settings")
        return {str(k).lower().removeprefix("safelinks_"): v for k, v in raw.items()}


def load_settings(**overrides: Any) -> Settings:
    """Read the configuration once; raise ConfigError naming the key on bad values."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "config"
            env = key if key[:1].isupper() else f"SAFELINKS_{key.upper()}"
            problems.append(f"{env}: {err['msg']}")
        raise ConfigError("; ".join(problems)) from None
