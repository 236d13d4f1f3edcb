"""``safelinks config reference|check``: every setting documented, and the effective configuration checked.

The reference is made from the settings model (``shared/settings_reference.py``), so it cannot drift
from what the service reads; ``check`` reads the configuration exactly as ``serve`` does, checks the
files it names, and prints the result with every secret redacted.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from safelinks.cli.context import settings_from
from safelinks.cli.table import print_json, print_pairs
from shared import settings_reference
from shared.alerts.rules import rules_from_settings
from shared.config import Settings, env_name
from shared.policy import configured_policies
from shared.signing import Keyring

REDACTED = "(set, redacted)"
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")
_ORIGIN = re.compile(r"^([a-z]+://[^/?#]*)[/?#].*$", re.S)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("config", help="the settings reference, and a check of the effective configuration")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    ref = verbs.add_parser("reference", help="every setting: environment name, file key, type, default, meaning")
    ref.add_argument("--markdown", action="store_true", help="as the README's table")
    ref.add_argument("--json", action="store_true", help="print JSON")
    ref.set_defaults(func=_reference)
    check = verbs.add_parser("check", help="validate the configuration and print it, secrets redacted")
    check.add_argument("--json", action="store_true", help="print JSON")
    check.set_defaults(func=_check)


def _reference(args: argparse.Namespace) -> int:
    if args.json:
        print_json([{"env": d.env, "file_key": d.file_key, "type": d.type, "default": d.default,
                     "meaning": d.meaning} for d in settings_reference.reference()])
    elif args.markdown:
        print(settings_reference.markdown(), end="")
    else:
        print(settings_reference.text(), end="")
    return 0


def _check(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    configured_policies(settings.policy_file)
    rules_from_settings(settings)
    spec = settings.signing_keys.get_secret_value()
    if spec:
        Keyring.parse(spec, settings.signing_key_id)
    shown = effective(settings)
    notes = warnings(settings)
    if args.json:
        print_json({"ok": True, "settings": shown, "warnings": notes})
    else:
        print_pairs([(env, value) for env, value in shown.items()])
        for note in notes:
            print(f"warning: {note}")
        print("configuration is valid")
    return 0


def effective(settings: Settings) -> dict[str, Any]:
    """Every setting under its documented name, as the service will use it; secrets replaced."""
    out: dict[str, Any] = {}
    for name in Settings.model_fields:
        out[env_name(name)] = _redacted(getattr(settings, name))
    out["SAFELINKS_DATABASE_URL"] = _PASSWORD.sub(r"\1***@", settings.database_url)
    # An incoming-webhook URL is itself the credential (Teams, Slack): show where it goes, not the rest.
    out["SAFELINKS_ALERT_WEBHOOK_URLS"] = ",".join(
        _ORIGIN.sub(r"\1/(redacted)", url.strip()) for url in settings.alert_webhook_urls.split(",") if url.strip())
    return out


def _redacted(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return REDACTED if value.get_secret_value() else ""
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Path):
        return str(value)
    return value


def warnings(settings: Settings) -> list[str]:
    """Valid but probably not meant, for a production deployment."""
    notes = []
    public = settings.public_url.startswith("https://")
    if public and not settings.bot_authenticated and settings.role in ("all", "bot"):
        notes.append("MicrosoftAppId is not set: the bot would accept unauthenticated requests")
    if public and not settings.database_url and not settings.data_dir.is_absolute():
        notes.append(f"SAFELINKS_DATA_DIR is relative ({settings.data_dir}): the database moves with the "
                     "working directory")
    if not settings.admins:
        notes.append("SAFELINKS_ADMINS is empty: nobody may run admin commands or card actions")
    if settings.feed_demo and public:
        notes.append("the demo feed is on (SAFELINKS_FEED_DEMO=false once real feeds are configured)")
    return notes
