"""Who the bot trusts: the start rule for unauthenticated mode, tenants, and whose word decides rights.

With ``MicrosoftAppId`` set, every activity carries a Bot Framework token the SDK checks (issuer,
audience, signing key endorsed for the channel, ``serviceurl`` claim), so what the activity says
(its sender's ``aadObjectId``, its conversation, its ``serviceUrl``) is what Teams sent.

Without it (the SDK's local development mode) nothing in an activity is verified: anyone who can
reach ``/api/messages`` can claim to be anyone, in any conversation, with any ``serviceUrl``. So:

* The bot starts unauthenticated only when both the listening address (``SAFELINKS_HOST``) and the
  public URL (``SAFELINKS_PUBLIC_URL``) are loopback: then only this machine can send activities, and
  whoever is on it can as well run the ``safelinks`` command. This is **local mode**, and in it an
  activity's claims count as they would from Teams (an admin's ``aadObjectId`` may say ``alerts here``,
  card buttons act), because that is what testing a bot locally needs.
* Anywhere else the start is refused, unless ``SAFELINKS_ALLOW_UNAUTHENTICATED_BOT=true`` says so
  explicitly (a reverse proxy that authenticates callers itself, a closed lab). Then the bot still
  protects links, but an activity's word grants nothing: nobody is an admin through the bot and card
  buttons are refused, since every field that would decide it can be forged.
* In every mode the bot sends only to ``SAFELINKS_BOT_SERVICE_URLS`` (Teams' Bot Connector endpoints
  by default), plus loopback endpoints in local mode, each call checked by ``shared.netguard``.
* Activities from tenants outside ``SAFELINKS_TENANT_IDS`` (default ``MicrosoftAppTenantId``) are
  refused with 403. With no tenant configured (local development) every tenant is accepted.
"""

from __future__ import annotations

from yarl import URL

from shared.config import Settings
from shared.errors import ConfigError
from shared.netguard import is_loopback_host

ALLOW_FLAG = "SAFELINKS_ALLOW_UNAUTHENTICATED_BOT"


class UnsafeStart(ConfigError):
    """The bot would accept unauthenticated activities from beyond this machine."""


def _public_host(settings: Settings) -> str:
    try:
        return URL(settings.public_url).raw_host or ""
    except ValueError:
        return ""


def local_only(settings: Settings) -> bool:
    """Whether both the listening address and the public URL are loopback."""
    return is_loopback_host(settings.host) and is_loopback_host(_public_host(settings))


def check_start(settings: Settings) -> None:
    """Raise ``UnsafeStart`` when the bot would run unauthenticated beyond loopback without the explicit flag."""
    if settings.bot_authenticated or local_only(settings) or settings.allow_unauthenticated_bot:
        return
    where = [f"SAFELINKS_HOST={settings.host}"] if not is_loopback_host(settings.host) else []
    if not is_loopback_host(_public_host(settings)):
        where.append(f"SAFELINKS_PUBLIC_URL={settings.public_url}")
    raise UnsafeStart(
        f"refusing to run the bot without MicrosoftAppId on a non-loopback address ({', '.join(where)}): "
        "anyone could post activities to it. Set MicrosoftAppId, MicrosoftAppPassword and "
        f"MicrosoftAppTenantId, listen on 127.0.0.1, or set {ALLOW_FLAG}=true to accept the risk.")


def mode(settings: Settings) -> str:
    """``authenticated``, ``local`` (unauthenticated on loopback) or ``open`` (unauthenticated, allowed)."""
    if settings.bot_authenticated:
        return "authenticated"
    return "local" if local_only(settings) else "open"


def claims_trusted(settings: Settings) -> bool:
    """Whether who an activity says it comes from may decide rights (admin commands, card buttons)."""
    return mode(settings) != "open"


def tenant_allowed(settings: Settings, tenant_id: str | None) -> bool:
    """Whether an activity of ``tenant_id`` is processed (every tenant when none is configured)."""
    if not settings.tenant_ids:
        return True
    return bool(tenant_id) and str(tenant_id).lower() in settings.tenant_ids


def describe(settings: Settings) -> list[str]:
    """The lines ``serve`` and the bot's start print about trust."""
    lines = {
        "authenticated": f"authenticated as app {settings.microsoft_app_id} ({settings.microsoft_app_type})",
        "local": "LOCAL UNAUTHENTICATED (no MicrosoftAppId; loopback only; activities are not verified)",
        "open": f"UNAUTHENTICATED AND REACHABLE BEYOND LOOPBACK ({ALLOW_FLAG}=true): activities are not "
                "verified, so admin commands and card buttons are refused",
    }
    tenants = (f"tenants: {', '.join(settings.tenant_ids)}" if settings.tenant_ids
               else "tenants: ANY (SAFELINKS_TENANT_IDS and MicrosoftAppTenantId are empty)")
    return [lines[mode(settings)], tenants]
