"""Secrets out of URLs before they are shown or logged: user:password and credential query values.

A feed or webhook address can carry its credentials (``https://user:pass@feeds.example/list?key=…``);
an error message from an HTTP library repeats the address. Whatever is shown (``/healthz``, the
command line, the log) passes ``redact_text``: the user information becomes ``***`` and so does the
value of every query parameter whose name says it is a credential. The rest of the address stays, so
people can still tell which feed failed.
"""

from __future__ import annotations

import re

REDACTED = "***"
# Query parameter names that carry credentials (matched whole, case-insensitively, with - and _ ignored).
_SECRET_NAMES = frozenset({
    "key", "apikey", "apitoken", "token", "accesstoken", "refreshtoken", "idtoken", "authtoken", "auth",
    "authorization", "secret", "clientsecret", "password", "passwd", "pwd", "pass", "sig", "signature",
    "code", "credential", "credentials", "session", "sessionid", "sid", "jwt", "bearer", "privatekey",
    "accesskey", "secretkey", "xamzsignature", "xamzcredential", "xamzsecuritytoken", "xgoogsignature",
    "subscriptionkey", "ocpapimsubscriptionkey",
})
_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]{0,30}://)([^\s\"'<>]*)")
_PARAM = re.compile(r"([?&;#])([^=&;#\s]+)=([^&;#\s\"'<>]*)")


def _is_secret_name(name: str) -> bool:
    return name.lower().replace("-", "").replace("_", "").replace(".", "") in _SECRET_NAMES


def _redact_url_rest(rest: str) -> str:
    authority_end = len(rest)
    for stop in "/?#":
        at = rest.find(stop)
        if at != -1:
            authority_end = min(authority_end, at)
    authority, tail = rest[:authority_end], rest[authority_end:]
    if "@" in authority:
        authority = REDACTED + "@" + authority.rpartition("@")[2]
    tail = _PARAM.sub(lambda m: f"{m.group(1)}{m.group(2)}={REDACTED}" if _is_secret_name(m.group(2))
                      else m.group(0), tail)
    return authority + tail


def redact_text(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***``."""
    if "://" not in text:
        return text
    return _URL.sub(lambda m: m.group(1) + _redact_url_rest(m.group(2)), text)


def redact_url(url: str) -> str:
    """One URL (a feed's or a webhook's address) with its credentials replaced by ``***``."""
    return redact_text(url)
