"""The one settings model: every knob of teams-safelinks, read once from the environment or a file.

Environment variables carry the prefix ``SAFELINKS_`` (``SAFELINKS_PORT=8080``), except Bot Framework's
own names, which keep theirs (``MicrosoftAppId``, ``MicrosoftAppPassword``, ``MicrosoftAppType``,
``MicrosoftAppTenantId``). A YAML file named by ``SAFELINKS_CONFIG_FILE`` (or ``--config``) supplies
defaults; the environment wins over the file. Nothing else in the project reads ``os.environ``.

Every source accepts the same names: the field name (``public_url``), the environment name
(``SAFELINKS_PUBLIC_URL``) and Bot Framework's names. A name that is none of these — a key in the file,
a ``SAFELINKS_*`` variable, a keyword — is refused with the nearest real one, so a typo cannot drop a
setting silently. Each field's ``description`` is its documentation: ``safelinks config reference``
and the README's table are made from it (``shared/settings_reference.py``).
"""

from __future__ import annotations

import difflib
import json
import os
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

from shared.durations import DurationError, parse_duration
from shared.errors import ConfigError
from shared.urls import URLError, base_url
from shared.verdicts.heuristics import HeuristicsConfig

Role = Literal["all", "bot", "proxy", "worker", "console"]
MIN_API_TOKEN_CHARS = 32
# The Bot Connector endpoints Teams puts in serviceUrl: the public cloud (every region is a path under
# smba.trafficmanager.net), GCC, GCC High and DoD.
TEAMS_SERVICE_URLS = (
    "https://smba.trafficmanager.net/",
    "https://smba.infra.gcc.teams.microsoft.com/",
    "https://smba.infra.gov.teams.microsoft.us/",
    "https://smba.infra.dod.teams.microsoft.us/",
)


COVERAGE_WORDS = ("off", "all", "teams", "chats", "users")


def _bf(name: str, prefixed: str, description: str) -> Any:
    # Bot Framework settings keep their SDK names; the prefixed spelling is accepted too.
    return Field(default="", validation_alias=AliasChoices(name, prefixed, prefixed.lower()),
                 description=description)


class Settings(BaseSettings):
    """All configuration. Field names map to ``SAFELINKS_<NAME>`` environment variables."""

    model_config = SettingsConfigDict(
        env_prefix="SAFELINKS_",
        extra="forbid",
        populate_by_name=True,
        case_sensitive=False,
    )

    config_file: Path | None = Field(default=None, description="YAML file of settings (also `--config FILE`); "
                                     "the environment wins over it")

    # Where it runs.
    host: str = Field(default="127.0.0.1", description="address `safelinks serve` listens on")
    port: int = Field(default=3978, ge=1, le=65535, description="port `safelinks serve` listens on")
    public_url: str = Field(default="", description="base of wrapped links and of the bot endpoint: your TLS "
                            "front end (default `http://HOST:PORT`)")
    role: Role = Field(default="all", description="what this process runs (also `serve --role`)")
    data_dir: Path = Field(default=Path("./var"), description="SQLite database, caches, downloaded feeds "
                           "(an absolute path in production)")
    database_url: str = Field(default="", description="`postgresql://…` for several replicas "
                              "(default: SQLite `safelinks.db` in the data directory)")
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info", description="least "
                                                                    "severity logged")

    # Link signing: "kid:secret" pairs, comma separated; secrets are base64url or hex, >= 16 bytes.
    signing_keys: SecretStr = Field(default=SecretStr(""), description="`kid:secret,kid2:secret2` (hex or "
                                    "base64url, ≥ 16 bytes each); unset: one key is generated once in the "
                                    "database and shared by every replica")
    signing_key_id: str = Field(default="", description="the key that signs new links (default: the first "
                                "of SAFELINKS_SIGNING_KEYS)")
    link_max_age_days: int = Field(default=0, ge=0, description="wrapped links older than this get a 410 "
                                   "\"expired\" page; 0: never")

    # Click handling.
    policy_file: Path | None = Field(default=None, description="Safe Links policies and rules (YAML; see "
                                     "`shared/policy/example.yaml`); unset: Built-in protection")
    anonymize_ip: bool = Field(default=True, description="store IPv4 /24 and IPv6 /48 only")
    trust_forwarded_for: bool = Field(default=False, description="take the client address from the rightmost "
                                      "`X-Forwarded-For` (behind a reverse proxy)")
    click_retention_days: int = Field(default=30, ge=1, description="days clicks are kept")
    click_through_token_ttl: int = Field(default=600, ge=30, le=3600, description="seconds a warning page's "
                                         "\"Continue anyway\" stays valid")
    verdict_cache_ttl: float = Field(default=30.0, ge=0, description="seconds a verdict is cached (cleared "
                                     "on any change)")
    sqlite_synchronous: Literal["NORMAL", "FULL"] = Field(default="NORMAL", description="`FULL` also "
                                                          "survives power loss, at some speed")
    db_unavailable: Literal["error-page", "wait"] = Field(default="error-page", description="`wait`: retry a "
                                                          "click's write for 15 s before the error page")

    # People and API access.
    admins: Annotated[list[str], NoDecode] = Field(default_factory=list, description="Entra object ids of "
                                                   "the admins (bot commands, card actions)")
    api_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list, description="bearer "
                                                             "tokens of the REST API")

    # Bot Framework identity and channel endpoints.
    microsoft_app_id: str = _bf("MicrosoftAppId", "SAFELINKS_MICROSOFT_APP_ID",
                                "the bot's Entra app id; unset: the SDK's local unauthenticated mode")
    microsoft_app_password: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("MicrosoftAppPassword", "SAFELINKS_MICROSOFT_APP_PASSWORD"),
        description="the bot's client secret",
    )
    microsoft_app_type: Literal["MultiTenant", "SingleTenant", "UserAssignedMSI"] = Field(
        default="SingleTenant",
        validation_alias=AliasChoices("MicrosoftAppType", "SAFELINKS_MICROSOFT_APP_TYPE"),
        description="the bot registration's type",
    )
    microsoft_app_tenant_id: str = _bf("MicrosoftAppTenantId", "SAFELINKS_MICROSOFT_APP_TENANT_ID",
                                       "your tenant id (SingleTenant and UserAssignedMSI)")
    to_bot_from_channel_openid_metadata_url: str = Field(default="", description="OpenID metadata of the "
                                                         "channel's tokens (sovereign clouds, test channels)")
    to_bot_from_channel_token_issuer: str = Field(default="", description="issuer of the channel's tokens "
                                                  "(sovereign clouds, test channels)")
    to_channel_from_bot_login_url: str = Field(default="", description="login endpoint for the bot's own "
                                               "tokens (sovereign clouds, test channels)")
    to_channel_from_bot_oauth_scope: str = Field(default="", description="scope of the bot's own tokens "
                                                 "(sovereign clouds, test channels)")
    oauth_url: str = Field(default="", description="Bot Framework token service (sovereign clouds)")
    evidence_snippet_chars: int = Field(default=200, ge=0, le=4000, description="characters of a message "
                                        "kept as evidence")

    # Alerts: rules, incidents and where notifications go (shared/alerts). Lists are comma separated.
    alert_rules_file: Path | None = Field(default=None, description="alert rules (YAML); unset: the three "
                                          "built-in rules")
    security_channel: str = Field(default="", description="conversation id of the security channel "
                                  "(else set by an admin's `alerts here`)")
    incident_window_hours: float = Field(default=24.0, gt=0, le=24 * 30, description="alerts sharing an "
                                         "entity within this many hours join one incident")
    incident_max_alerts: int = Field(default=150, ge=1, le=10_000, description="alerts per incident before a "
                                     "new one takes over")
    alert_email_to: str = Field(default="", description="addresses alert e-mails go to (comma separated)")
    alert_email_daily_limit: int = Field(default=100, ge=0, description="alert e-mails per day at most")
    alert_webhook_urls: str = Field(default="", description="URLs alerts are posted to (comma separated)")
    alert_webhook_secret: SecretStr = Field(default=SecretStr(""), description="HMAC key of "
                                            "`X-SafeLinks-Signature` on webhook bodies")
    smtp_host: str = Field(default="", description="SMTP server for alert e-mail")
    smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP port")
    smtp_security: Literal["none", "starttls", "tls"] = Field(default="starttls", description="SMTP "
                                                              "transport security")
    smtp_username: str = Field(default="", description="SMTP user")
    smtp_password: SecretStr = Field(default=SecretStr(""), description="SMTP password")
    smtp_from: str = Field(default="safelinks@localhost", description="sender of alert e-mails")
    smtp_timeout: float = Field(default=30.0, gt=0, description="seconds an SMTP exchange may take")

    # Alert storms (shared/alerts/budget.py): alert notifications each recipient (an e-mail recipient
    # list, a webhook) gets per window; the rest of the window's alerts go out as one summary after it.
    alert_notify_burst: int = Field(default=10, ge=1, le=10_000, description="alert e-mails/webhooks per "
                                    "recipient per window before the rest wait for a summary")
    alert_notify_window_seconds: float = Field(default=900.0, ge=10.0, le=86_400.0, description="the window "
                                               "of that budget, in seconds; its summary is sent when it ends")

    # Verdict sources: threat feeds, heuristics, URL scans, Google Safe Browsing.
    feed_every_default: float = Field(default=3600.0, ge=60.0, description="seconds between feed updates "
                                      "when `feeds add --every` is not given")
    feed_timeout: float = Field(default=300.0, gt=0, description="seconds a feed download may take")
    feed_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024, description="largest feed download")
    feed_allow_private: bool = Field(default=False, description="allow feed URLs on private, loopback or "
                                     "link-local addresses")
    feed_demo: bool = Field(default=True, description="the built-in demo feed (`*.safelinks.invalid`) "
                            "while no feed is configured")
    heuristics_enabled: bool = Field(default=True, description="mark URLs suspicious by heuristics")
    heuristics: HeuristicsConfig = Field(default_factory=HeuristicsConfig, description="heuristic weights, "
                                         "threshold and lists (JSON or a YAML mapping)")
    tenant_domains: Annotated[list[str], NoDecode] = Field(default_factory=list, description="your own "
                                                           "domains, protected from look-alikes")
    scan_api_url: str = Field(default="", description="urlscan.io-style scan API; unset: no scans")
    scan_api_key: SecretStr = Field(default=SecretStr(""), description="the scan API's key")
    scan_visibility: Literal["public", "unlisted", "private"] = Field(default="private", description="who "
                                                                      "may see submitted scans")
    scan_poll_interval: float = Field(default=2.0, gt=0, description="seconds between polls of a scan")
    scan_timeout: float = Field(default=120.0, gt=0, description="seconds a scan may take")
    scan_result_ttl: float = Field(default=86400.0, gt=0, description="seconds a scan result is reused")
    scan_allow_private: bool = Field(default=False, description="submit URLs that resolve to private "
                                     "addresses")
    safebrowsing_mode: Literal["off", "update", "lookup"] = Field(default="off", description="Google Safe "
                                                                  "Browsing (non-commercial use only)")
    safebrowsing_api_key: SecretStr = Field(default=SecretStr(""), description="Google API key (required "
                                            "unless the mode is off)")
    safebrowsing_url: str = Field(default="https://safebrowsing.googleapis.com", description="Safe "
                                  "Browsing API base")
    safebrowsing_client_id: str = Field(default="teams-safelinks", description="client id sent to Google")
    safebrowsing_threat_types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["MALWARE", "SOCIAL_ENGINEERING", "UNWANTED_SOFTWARE",
                                 "POTENTIALLY_HARMFUL_APPLICATION"],
        description="threat lists consulted",
    )

    # Bot and API trust: who may talk to the bot and the API, and which channel endpoints the bot calls.
    tenant_ids: Annotated[list[str], NoDecode] = Field(default_factory=list, description="tenant ids whose "
                                                       "activities are processed (default: "
                                                       "`MicrosoftAppTenantId`; none: every tenant)")
    allow_unauthenticated_bot: bool = Field(default=False, description="run the bot without `MicrosoftAppId` "
                                            "on a non-loopback address or public URL (it then grants nothing)")
    bot_service_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(TEAMS_SERVICE_URLS),
        description="Bot Connector endpoints the bot may call (an activity's `serviceUrl`); default: Teams'")
    api_delegated_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="API tokens that may name the person they act for "
                                          "(`X-SafeLinks-User`); they are API tokens too")

    # Replicas and privacy (shared/outbox.py, shared/privacy/): how long a delivery claim lasts
    # before another worker may take the item over, and how long each kind of record is kept.
    outbox_lease_seconds: float = Field(default=60.0, ge=1.0, le=3600.0, description="seconds a worker's "
                                        "claim on a notification lasts before another may take it")
    message_retention_days: int = Field(default=30, ge=1, description="days message evidence is kept")
    alert_retention_days: int = Field(default=180, ge=1, description="days alerts and incidents are kept")
    outbox_retention_days: int = Field(default=7, ge=1, description="days delivered notifications are kept")
    retention_every_hours: float = Field(default=6.0, gt=0, le=24 * 7, description="hours between purges "
                                         "of expired records")

    # Operations (rollout): logs, and the privacy and terms pages the Teams manifest points at.
    log_format: Literal["text", "json"] = Field(default="text", description="`json`: one JSON object per "
                                                "line, with request ids")
    access_log: bool = Field(default=False, description="log each request (path without query, status, "
                             "time, anonymised address)")
    privacy_statement: str = Field(default="", description="`/privacy`: an https URL to redirect to, or a "
                                   "text file to show; unset: the built-in statement")
    terms_of_use: str = Field(default="", description="`/terms`: an https URL to redirect to, or a text file "
                              "to show; unset: the built-in terms")

    # Quarantine and message reports (shared/quarantine, shared/graph): hide messages whose links are
    # malicious through Microsoft Graph (policyViolation). Graph credentials default to the bot's.
    teams_quarantine: Literal["off", "malicious", "risky"] = Field(default="off", description="hide Teams "
                                                                   "messages whose links are malicious "
                                                                   "(`risky`: or suspicious) through Graph")
    graph_client_id: str = Field(default="", description="Entra app id for Microsoft Graph (default: "
                                 "`MicrosoftAppId`)")
    graph_client_secret: SecretStr = Field(default=SecretStr(""), description="its client secret (default: "
                                           "`MicrosoftAppPassword`)")
    graph_client_certificate: Path | None = Field(default=None, description="PEM file with its private key "
                                                  "and certificate, instead of a secret")
    graph_tenant_id: str = Field(default="", description="the tenant the Graph token is for (default: "
                                 "`MicrosoftAppTenantId`)")
    graph_url: str = Field(default="https://graph.microsoft.com/v1.0", description="Graph base URL "
                           "(sovereign clouds, tests)")
    graph_token_url: str = Field(default="", description="where the Graph token comes from (default: the "
                                 "Entra v2 token endpoint of the tenant)")
    graph_model: Literal["", "A", "B"] = Field(default="", description="Graph's licensing model parameter "
                                               "(`model=A`), where required")
    graph_timeout: float = Field(default=30.0, gt=0, le=300, description="seconds per Graph call")

    # Coverage (shared/coverage): install the Teams app through Microsoft Graph in the teams, group chats and
    # users' personal scope where it is missing, once per interval across workers. Off by default.
    coverage: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["off"], description="where the "
                                                     "app is installed through Graph where missing: `off`, `all`, "
                                                     "or any of `teams`, `chats`, `users`")
    coverage_every_hours: float = Field(default=24.0, gt=0, le=24 * 7, description="hours between coverage "
                                        "rounds (discovery, then installs)")
    coverage_groups: Annotated[list[str], NoDecode] = Field(default_factory=list, description="Entra group ids: "
                                                            "only these teams, and these groups' members (their "
                                                            "personal scope and group chats); unset: everyone")
    coverage_users: Annotated[list[str], NoDecode] = Field(default_factory=list, description="user object ids or "
                                                           "UPNs in scope too (alone: only these users and their "
                                                           "group chats)")
    coverage_exclude: Annotated[list[str], NoDecode] = Field(default_factory=list, description="team (group) "
                                                             "ids, chat ids, user ids or UPNs never installed into")
    coverage_catalog_app_id: str = Field(default="", description="the app's id in the tenant's app catalog; "
                                         "unset: looked up by its external id (`MicrosoftAppId`)")
    coverage_rsc_consent: bool = Field(default=True, description="consent to the app's RSC permissions when "
                                       "installing in teams and chats (needs the `ReadWriteAndConsentSelf…` "
                                       "permissions)")
    coverage_rate: float = Field(default=5.0, gt=0, le=100, description="Graph calls per second for coverage "
                                 "reads, and as many for installs")

    # The analyst console (console/): sessions, and OpenID Connect sign-in (Entra ID, Keycloak, Dex...).
    # Without an OIDC metadata URL, only the one-time links of ``safelinks console link`` sign in.
    console_idle_minutes: int = Field(default=30, ge=1, le=24 * 60, description="minutes a console session "
                                      "lasts without use")
    console_session_hours: int = Field(default=12, ge=1, le=24 * 7, description="hours a console session "
                                       "lasts at most")
    console_oidc_metadata_url: str = Field(default="", description="OpenID Connect metadata URL for console "
                                           "sign-in (Entra ID, Keycloak, Dex); unset: one-time links only")
    console_oidc_client_id: str = Field(default="", description="the console's OpenID Connect client id")
    console_oidc_client_secret: SecretStr = Field(default=SecretStr(""), description="its client secret")
    console_oidc_scopes: str = Field(default="openid profile email", description="scopes asked at sign-in")
    console_oidc_admin_role: str = Field(default="SafeLinks.Admin", description="app role that may change "
                                         "things in the console")
    console_oidc_reader_role: str = Field(default="SafeLinks.Reader", description="app role that may only "
                                          "look")
    # The audit log (shared/store/audit.py: changes made from the console, the command line, the API or
    # a card), purged by shared/privacy/retention.py: how long its entries are kept.
    audit_retention_days: int = Field(default=365, ge=1, description="days audit log entries are kept")

    @field_validator("public_url", "scan_api_url", "safebrowsing_url", "graph_url", "graph_token_url",
                     "console_oidc_metadata_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        # A base that paths are appended to: http(s), no trailing slash to double, and written as a browser
        # reads it, so the links and the manifest built on it name what a browser opens.
        value = value.strip().rstrip("/")
        if not value:
            return value
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        try:
            return base_url(value)
        except URLError as exc:
            raise ValueError(f"is not an address a browser opens: {exc}") from None

    @field_validator("safebrowsing_api_key")
    @classmethod
    def _safebrowsing_key(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        if info.data.get("safebrowsing_mode", "off") != "off" and not value.get_secret_value():
            raise ValueError(f"required when SAFELINKS_SAFEBROWSING_MODE is {info.data['safebrowsing_mode']}")
        return value

    @field_validator("admins", "api_tokens", "tenant_domains", "safebrowsing_threat_types", "tenant_ids",
                     "bot_service_urls", "api_delegated_tokens", "coverage", "coverage_groups", "coverage_users",
                     "coverage_exclude", mode="before")
    @classmethod
    def _split_csv(cls, value: Any) -> Any:
        # Lists come from the environment as "a,b" (or a JSON array); from YAML as lists.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("coverage")
    @classmethod
    def _coverage(cls, value: list[str]) -> list[str]:
        words = [w.strip().lower() for w in value if w.strip()] or ["off"]
        unknown = [w for w in words if w not in COVERAGE_WORDS]
        if unknown:
            raise ValueError(f"unknown {', '.join(map(repr, unknown))}: use off, all, or any of teams, chats, users")
        if "off" in words and len(words) > 1:
            raise ValueError("`off` stands alone")
        return words

    @field_validator("privacy_statement", "terms_of_use")
    @classmethod
    def _page_source(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("https://", "http://")) and not Path(value).is_file():
            raise ValueError(f"neither an http(s) URL nor a readable file: {value}")
        return value

    @field_validator("feed_every_default", "feed_timeout", "scan_poll_interval", "scan_timeout", "scan_result_ttl",
                     "outbox_lease_seconds", "alert_notify_window_seconds", "verdict_cache_ttl", "smtp_timeout",
                     mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        # Settings in seconds take the one duration syntax too ("1h", "90s"); numbers stay numbers.
        if isinstance(value, str):
            try:
                return parse_duration(value)
            except DurationError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("api_tokens", "api_delegated_tokens")
    @classmethod
    def _api_tokens(cls, value: list[SecretStr]) -> list[SecretStr]:
        for n, token in enumerate(value, 1):
            secret = token.get_secret_value()
            if len(secret) < MIN_API_TOKEN_CHARS:
                raise ValueError(f"token #{n} has {len(secret)} characters; use at least {MIN_API_TOKEN_CHARS} "
                                 "(for example: python -c 'import secrets; print(secrets.token_urlsafe(32))')")
            if not secret.isascii() or not secret.isprintable() or " " in secret:
                raise ValueError(f"token #{n} must be printable ASCII without spaces")
        return value

    @field_validator("bot_service_urls")
    @classmethod
    def _bot_service_urls(cls, value: list[str]) -> list[str]:
        cleaned = []
        for url in value:
            url = url.strip()
            if not url.startswith(("http://", "https://")) or "?" in url or "#" in url or "@" in url:
                raise ValueError(f"{url!r}: give the base URL of a Bot Connector endpoint (https://host/path/)")
            cleaned.append(url if url.endswith("/") else url + "/")
        return cleaned

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:", "postgresql://", "postgres://")):
            raise ValueError("must be sqlite:///PATH or postgresql://...")
        return value

    @model_validator(mode="after")
    def _derived(self) -> Settings:
        if self.microsoft_app_id and self.microsoft_app_type == "SingleTenant" and not self.microsoft_app_tenant_id:
            raise ValueError("MicrosoftAppTenantId is required when MicrosoftAppType is SingleTenant "
                             "(or set MicrosoftAppType=MultiTenant and list SAFELINKS_TENANT_IDS)")
        if not self.tenant_ids and self.microsoft_app_tenant_id:
            self.tenant_ids = [self.microsoft_app_tenant_id]
        self.tenant_ids = [t.strip().lower() for t in self.tenant_ids if t.strip()]
        if not self.public_url:
            shown = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
            self.public_url = f"http://{shown}:{self.port}"
        return self

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'safelinks.db').as_posix()}"

    @property
    def graph_client(self) -> str:
        return self.graph_client_id or self.microsoft_app_id

    @property
    def graph_secret(self) -> str:
        return self.graph_client_secret.get_secret_value() or self.microsoft_app_password.get_secret_value()

    @property
    def graph_tenant(self) -> str:
        return self.graph_tenant_id or self.microsoft_app_tenant_id

    @property
    def graph_token_endpoint(self) -> str:
        if self.graph_token_url:
            return self.graph_token_url
        return f"https://login.microsoftonline.com/{self.graph_tenant or 'organizations'}/oauth2/v2.0/token"

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
        return (init_settings, _KnownEnvSource(env_settings), _YamlFileSource(settings_cls, env_settings))


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
        names = accepted_names()
        values: dict[str, Any] = {}
        for key, value in raw.items():
            field = names.get(str(key).lower())
            if field is None:
                raise ConfigError(f"config_file: {file}: unknown setting {key!r}{_suggest(str(key), names)}",
                                  [(str(key), "unknown setting")])
            values[field] = value
        return values


class _KnownEnvSource(PydanticBaseSettingsSource):
    """The environment, refusing ``SAFELINKS_*`` variables that name no setting (a typo is not dropped)."""

    def __init__(self, env: PydanticBaseSettingsSource) -> None:
        super().__init__(env.settings_cls)
        self._env = env

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        names = accepted_names()
        for key in os.environ:
            upper = key.upper()
            # SAFELINKS_TEST_* is left to the test suite (which database to test against).
            if upper.startswith("SAFELINKS_") and not upper.startswith("SAFELINKS_TEST_") \
                    and key.lower() not in names:
                raise ConfigError(f"{key}: unknown setting{_suggest(key, names)}", [(key, "unknown setting")])
        return self._env()


def accepted_names() -> dict[str, str]:
    """Every spelling a setting is accepted under, lower-cased, to its field name.

    The field name (``public_url``), its environment name (``SAFELINKS_PUBLIC_URL``) and any other
    documented name (``MicrosoftAppId``) are accepted alike in the environment and in a file.
    """
    names: dict[str, str] = {}
    for name, info in Settings.model_fields.items():
        names[name] = name
        names[f"safelinks_{name}"] = name
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            for choice in alias.choices:
                if isinstance(choice, str):
                    names[choice.lower()] = name
    return names


def _suggest(key: str, names: dict[str, str]) -> str:
    close = difflib.get_close_matches(key.lower(), list(names), n=1, cutoff=0.75)
    return f" (did you mean {env_name(names[close[0]])}?)" if close else ""


def env_name(field: str) -> str:
    """The documented name of a setting: its environment variable, or Bot Framework's own name."""
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return f"SAFELINKS_{field.upper()}"


def load_settings(**overrides: Any) -> Settings:
    """Read the configuration once; raise ConfigError naming the key on bad values."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems: list[tuple[str, str]] = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            field = loc[0] if loc else "config"
            if field in Settings.model_fields or field.lower() in accepted_names():
                field = accepted_names().get(field.lower(), field)
            msg = "unknown setting" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append((".".join([field, *loc[1:]]), msg))
        raise ConfigError("; ".join(f"{_shown(k)}: {m}" for k, m in problems), problems) from None


def _shown(key: str) -> str:
    head, _, rest = key.partition(".")
    if head in Settings.model_fields:
        return env_name(head) + (f".{rest}" if rest else "")
    return key
