"""Alert rules as data: the built-in rules, a YAML rules file over them, validated by a JSON schema.

A rule says what starts it (a click, or a verdict change with a look-back over earlier clicks),
which of those count (conditions), how repeats are folded (aggregation: later events join the
open alert; suppression: later events are dropped), and where the alert is announced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from shared import durations
from shared.alerts.errors import RulesError, RulesFileError
from shared.alerts.model import Severity
from shared.clicks import Click
from shared.config import Settings

ENTITIES = ("user", "url", "domain", "message", "sender", "workload")


class Trigger(StrEnum):
    CLICK = "click"
    VERDICT_CHANGE = "verdict_change"


def parse_duration(value: str | float | int) -> float:
    """A rule's window or look-back in the one duration syntax (``shared.durations``); raises RulesError."""
    try:
        return durations.parse_duration(value)
    except durations.DurationError as exc:
        raise RulesError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class ClickConditions:
    """Which clicks a click rule takes. ``None`` means "any"."""

    workloads: frozenset[str] | None = None
    verdicts: frozenset[str] | None = None
    clicked_through: bool | None = None
    action_types: frozenset[str] | None = None

    def matches(self, click: Click) -> bool:
        if self.clicked_through is not None and click.is_clicked_through != self.clicked_through:
            return False
        if self.workloads is not None and click.workload.value not in self.workloads:
            return False
        if self.verdicts is not None and click.verdict not in self.verdicts:
            return False
        return self.action_types is None or click.action_type.value in self.action_types


@dataclass(frozen=True, slots=True)
class ChangeConditions:
    """Which verdict changes a verdict-change rule takes."""

    new_verdicts: frozenset[str] = frozenset({"malicious"})
    sources: frozenset[str] | None = None

    def matches(self, new_verdict: str, old_verdict: str, source: str) -> bool:
        if new_verdict not in self.new_verdicts or old_verdict in self.new_verdicts:
            return False
        return self.sources is None or source in self.sources


@dataclass(frozen=True, slots=True)
class Grouping:
    """Aggregation or suppression: events with the same ``by`` values within ``seconds`` fold together.

    ``seconds`` None (``window: open``) folds them for as long as the alert they join is open.
    """

    seconds: float | None
    by: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Volume:
    """A click rule that fires on bursts only: from the ``clicks``-th matching click on one URL within
    ``seconds`` (counted in the click log up to the click, so a replay counts the same)."""

    clicks: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    secret: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class Notifications:
    teams: bool = True
    email_to: tuple[str, ...] = ()
    email_daily_limit: int = 100
    webhooks: tuple[Webhook, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    description: str
    severity: Severity
    category: str
    trigger: Trigger
    enabled: bool = True
    recommended_actions: str = ""
    click: ClickConditions = field(default_factory=ClickConditions)
    change: ChangeConditions = field(default_factory=ChangeConditions)
    lookback_seconds: float = 48 * 3600.0
    one_alert_per: tuple[str, ...] = ("user", "message")
    resolve_when: frozenset[str] = frozenset()
    aggregation: Grouping | None = None
    suppression: Grouping | None = None
    notifications: Notifications = field(default_factory=Notifications)
    volume: Volume | None = None


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]

    def for_trigger(self, trigger: Trigger) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.enabled and r.trigger is trigger)

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


@cache
def _schema() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("rules_schema.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def _builtin_documents() -> list[dict[str, Any]]:
    text = resources.files(__package__).joinpath("default_rules.yaml").read_text(encoding="utf-8")
    return list(yaml.safe_load(text)["rules"])


def validate_document(doc: Any, origin: str) -> list[dict[str, Any]]:
    """Check a rules document against the schema; RulesError names the rule and the field."""
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        path = list(err.absolute_path)
        where = origin
        if len(path) >= 2 and path[0] == "rules" and isinstance(doc, dict):
            rule = doc["rules"][path[1]]
            rule_id = rule.get("id", f"#{path[1] + 1}") if isinstance(rule, dict) else f"#{path[1] + 1}"
            where = f"{origin}: rule {rule_id}"
            path = path[2:]
        field_name = ".".join(str(p) for p in path) or "(document)"
        raise RulesError(f"{where}: {field_name}: {err.message}")
    return list(doc["rules"])


def _grouping(raw: Any, default_window: float) -> Grouping | None:
    if raw is None or raw == "none":
        return None
    window = raw.get("window", raw.get("for", default_window))
    return Grouping(None if window == "open" else parse_duration(window), tuple(raw["by"]))


def _split(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _notifications(raw: dict[str, Any] | None, settings: Settings | None) -> Notifications:
    raw = raw or {}
    email_to = _split(settings.alert_email_to) if settings else ()
    limit = settings.alert_email_daily_limit if settings else 100
    secret = settings.alert_webhook_secret.get_secret_value() if settings else ""
    hooks = tuple(Webhook(url, secret) for url in _split(settings.alert_webhook_urls)) if settings else ()
    email = raw.get("email")
    if email == "none":
        email_to = ()
    elif isinstance(email, dict):
        email_to = tuple(email.get("recipients", email_to))
        limit = int(email.get("daily_limit", limit))
    if "webhooks" in raw:
        hooks = tuple(Webhook(h["url"], h.get("secret", secret), h.get("name", "")) for h in raw["webhooks"])
    return Notifications(bool(raw.get("teams", True)), email_to, limit, hooks)


def _rule(raw: dict[str, Any], settings: Settings | None, origin: str) -> Rule:
    rid = raw["id"]
    missing = [k for k in ("title", "severity", "trigger") if k not in raw]
    if missing:
        raise RulesError(f"{origin}: rule {rid}: {', '.join(missing)}: required for a new rule")
    cond = raw.get("conditions", {})
    trigger = Trigger(raw["trigger"])
    if trigger is Trigger.CLICK and ({"new_verdict", "source"} & set(cond)):
        raise RulesError(f"{origin}: rule {rid}: conditions: new_verdict and source apply to verdict_change rules")
    if trigger is Trigger.VERDICT_CHANGE and ({"workload", "verdict", "clicked_through", "action_type"} & set(cond)):
        raise RulesError(f"{origin}: rule {rid}: conditions: click conditions apply to click rules")
    if trigger is Trigger.VERDICT_CHANGE and "volume" in raw:
        raise RulesError(f"{origin}: rule {rid}: volume: applies to click rules")

    def opt(name: str) -> frozenset[str] | None:
        return frozenset(cond[name]) if name in cond else None

    try:
        return Rule(
            id=rid,
            title=raw["title"],
            description=raw.get("description", "").strip(),
            severity=Severity(raw["severity"]),
            category=raw.get("category", "ThreatManagement"),
            trigger=trigger,
            enabled=bool(raw.get("enabled", True)),
            recommended_actions=raw.get("recommended_actions", "").strip(),
            click=ClickConditions(opt("workload"), opt("verdict"), cond.get("clicked_through"), opt("action_type")),
            change=ChangeConditions(frozenset(cond.get("new_verdict", ["malicious"])), opt("source")),
            lookback_seconds=parse_duration(raw.get("lookback", "48h")),
            one_alert_per=tuple(raw.get("one_alert_per", ("user", "message"))),
            resolve_when=frozenset(raw.get("resolve_when", ())),
            aggregation=_grouping(raw.get("aggregation"), 60.0),
            suppression=_grouping(raw.get("suppression"), 3600.0),
            notifications=_notifications(raw.get("notifications"), settings),
            volume=Volume(int(raw["volume"]["clicks"]), parse_duration(raw["volume"]["within"]))
            if "volume" in raw else None,
        )
    except RulesError as exc:
        raise RulesError(f"{origin}: rule {rid}: {exc}") from None


def build_rules(documents: list[dict[str, Any]], settings: Settings | None, origin: str) -> RuleSet:
    """Merge rule documents over the built-ins (same id: the given fields replace the built-in's)."""
    merged: dict[str, dict[str, Any]] = {r["id"]: dict(r) for r in _builtin_documents()}
    for raw in documents:
        base = dict(merged.get(raw["id"], {}))
        # Aggregation and suppression are alternatives: a file naming one replaces the built-in's other.
        for one, other in (("aggregation", "suppression"), ("suppression", "aggregation")):
            if one in raw and other not in raw:
                base.pop(other, None)
        merged[raw["id"]] = {**base, **raw}
    return RuleSet(tuple(_rule(raw, settings, origin) for raw in merged.values()))


def load_rules(path: Path | None, settings: Settings | None = None) -> RuleSet:
    """The built-in rules, changed by the file at ``path`` when given."""
    if path is None:
        return build_rules([], settings, "built-in rules")
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise RulesError(f"{path}: not valid YAML: {exc}") from None
    return build_rules(validate_document(doc, str(path)), settings, str(path))


def rules_from_settings(settings: Settings) -> RuleSet:
    """The configured rules; an unusable file is a configuration error naming its setting."""
    try:
        return load_rules(settings.alert_rules_file, settings)
    except RulesError as exc:
        raise RulesFileError(str(exc)) from None
