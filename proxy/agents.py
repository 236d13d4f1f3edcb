"""Telling clicks from link previews, prefetchers and scanners.

Teams, Slack, Outlook and mail-security scanners fetch links to preview or vet them. Those fetches
must never count as clicks, never raise alerts, and never be sent on to a possibly risky page, so
they get a neutral page instead. A person's browser can also send HEAD; HEAD is never a click.
A ``Sec-Purpose``/``Purpose`` header naming a prefetch or a preview (``prefetch``,
``prefetch;prerender``, ``preview``) is a speculative load, never a click.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Substrings of user agents that fetch links without a person behind them.
_PREVIEW_AGENTS = (
    "skypeuripreview",  # Teams and Skype link previews
    "microsoft office",  # Office's own fetches ("Microsoft Office Existence Discovery", Outlook)
    "ms-office",
    "microsoftpreview",
    "bingpreview",
    "outlook-ios",
    "office365",
    "slackbot",
    "slack-imgproxy",
    "discordbot",
    "twitterbot",
    "facebookexternalhit",
    "linkedinbot",
    "whatsapp",
    "telegrambot",
    "googlebot",
    "google-safety",
    "googleimageproxy",
    "applebot",
    "yahoo! slurp",
    "mimecast",
    "proofpoint",
    "barracuda",
    "symantec",
    "trendmicro",
    "forcepoint",
    "ironport",
    "urldefense",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "go-http-client",
    "curl/",
    "wget/",
    "libwww",
    "java/",
    "okhttp",
    "headlesschrome",
    "phantomjs",
)
# Matched against the lower-cased agent: case-insensitive regexes cost several times more, on every click.
_GENERIC_BOT = re.compile(r"\b(?:bot|crawler|spider|preview|scanner|fetcher|monitor|validator)\b")


def is_automated(method: str, user_agent: str | None, purpose: str | None = None) -> str | None:
    """Why a request is not a person's click, or None if it looks like one."""
    if method == "HEAD":
        return "HEAD request"
    if purpose:
        lowered = purpose.lower()
        if "prefetch" in lowered or "preview" in lowered:
            return f"prefetch ({purpose[:64]})"
    if not user_agent or not user_agent.strip():
        return "no user agent"
    return _classify(user_agent)


@lru_cache(maxsize=4096)
def _classify(user_agent: str) -> str | None:
    # Few distinct agents send most clicks: classify each once.
    ua = user_agent.lower()
    for marker in _PREVIEW_AGENTS:
        if marker in ua:
            return f"preview or scanner agent ({marker.strip('/')})"
    if _GENERIC_BOT.search(ua):
        return "automated agent"
    return None


# Browsers that send Fetch Metadata (Sec-Fetch-Site) on every request to a secure or loopback origin:
# Chromium 76, Firefox 90, Safari 16.4. iOS browsers other than Safari do not say their WebKit version.
_CHROMIUM = re.compile(r"\b(?:Chrome|Chromium)/(\d+)")
_FIREFOX = re.compile(r"\bFirefox/(\d+)")
_SAFARI = re.compile(r"\bVersion/(\d+)(?:\.(\d+))?.*\bSafari/")


@lru_cache(maxsize=1024)
def sends_fetch_metadata(user_agent: str | None) -> bool:
    """Whether this browser always sends ``Sec-Fetch-Site`` (to https and loopback origins)."""
    if not user_agent:
        return False
    if "CriOS/" in user_agent or "FxiOS/" in user_agent or "EdgiOS/" in user_agent:
        return False
    chromium = _CHROMIUM.search(user_agent)
    if chromium:
        return int(chromium.group(1)) >= 76
    firefox = _FIREFOX.search(user_agent)
    if firefox:
        return int(firefox.group(1)) >= 90
    safari = _SAFARI.search(user_agent)
    if safari:
        return (int(safari.group(1)), int(safari.group(2) or 0)) >= (16, 4)
    return False
