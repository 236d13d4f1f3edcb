"""Undoing other link rewriters, so that a wrapped link is judged by where it really goes.

Known wrappers: Microsoft Defender Safe Links (``*.safelinks.protection.outlook.com``, the
GCC High ``.office365.us`` and 21Vianet ``.partner.outlook.cn`` clouds), the Teams Safe Links
jump page (``statics.teams.cdn.office.net/evergreen-assets/safelinks/<n>/atp-safelinks.html``
and its ``staticsint`` / ``teams.public.onecdn.static.microsoft`` twins), and Proofpoint URL
Defense v1, v2 and v3. Anything else, and any wrapper that does not decode cleanly, comes back
unchanged: unwrapping never raises.
"""

from __future__ import annotations

import base64
import binascii
import re
import string
from collections.abc import Callable
from urllib.parse import unquote

from shared.urls.errors import URLError
from shared.urls.weburl import parse

_SAFE_LINKS_HOST = re.compile(
    r"(?:[a-z0-9-]+\.)?safelinks\.protection\.(?:outlook\.com|office365\.us|partner\.outlook\.cn)"
)
_TEAMS_JUMP_HOSTS = frozenset(
    {"statics.teams.cdn.office.net", "staticsint.teams.cdn.office.net",
     "teams.public.onecdn.static.microsoft"}
)  # fmt: skip
_TEAMS_JUMP_PATH = re.compile(r"/(?:[\w.-]+/)*safelinks/\d+/atp-safelinks\.html")
_PROOFPOINT_HOSTS = frozenset({"urldefense.proofpoint.com", "urldefense.com", "urldefense.us"})
_PROOFPOINT_V3 = re.compile(r"/v3/__(?P<url>.+?)__(?:;(?P<bytes>[A-Za-z0-9_\-]*))?!")
_V3_TOKEN = re.compile(r"\*(?:\*(?P<run>.))?")
_V3_RUN_LENGTH = {
    letter: index + 2
    for index, letter in enumerate(
        string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    )
}
_SCHEME_ONE_SLASH = re.compile(r"^(https?):/(?!/)", re.IGNORECASE)


class _Malformed(Exception):
    """A wrapper was recognised but its payload does not decode."""


def unwrap(url: str, *, max_depth: int = 5) -> str:
    """The link inside any known wrappers of ``url`` (up to ``max_depth`` layers), else ``url``."""
    current = url
    for _ in range(max_depth):
        try:
            inner = _unwrap_once(current)
        except (_Malformed, ValueError, UnicodeError, binascii.Error):
            return current
        if inner is None or inner == current:
            return current
        current = inner
    return current


def _unwrap_once(url: str) -> str | None:
    # The wrapper is recognised by the host the browser opens: "http://evil\\@safelinks..." goes to
    # "evil", so it is not a Safe Links link, whatever its query says.
    try:
        value = parse(url)
    except URLError:
        return None
    host, query = value.host, value.query or ""
    if _SAFE_LINKS_HOST.fullmatch(host):
        return _query_value(query, "url", unquote)
    if host in _TEAMS_JUMP_HOSTS and _TEAMS_JUMP_PATH.fullmatch(value.path):
        return _query_value(query, "url", unquote)
    if host in _PROOFPOINT_HOSTS:
        return _proofpoint(url.strip(), value.path, query)
    return None


def _proofpoint(url: str, path: str, query: str) -> str | None:
    if path == "/v1/url":
        return _query_value(query, "u", unquote)
    if path == "/v2/url":
        return _query_value(query, "u", _decode_v2)
    if path.startswith("/v3/"):
        return _decode_v3(url)
    return None


def _query_value(query: str, name: str, decode: Callable[[str], str]) -> str:
    prefix = name + "="
    for pair in query.split("&"):
        if pair.startswith(prefix):
            value = decode(pair[len(prefix) :]).strip()
            if not value:
                raise _Malformed(f"empty {name!r} parameter")
            return value
    raise _Malformed(f"no {name!r} parameter")


def _decode_v2(value: str) -> str:
    return unquote(value.replace("-", "%").replace("_", "/"))


def _decode_v3(url: str) -> str:
    match = _PROOFPOINT_V3.search(url)
    if match is None:
        raise _Malformed("not a URL Defense v3 link")
    encoded = unquote(match.group("url"))
    replaced = base64.urlsafe_b64decode((match.group("bytes") or "") + "==").decode("utf-8")
    position = 0
    pieces: list[str] = []
    cursor = 0
    for token in _V3_TOKEN.finditer(encoded):
        pieces.append(encoded[cursor : token.start()])
        run = token.group("run")
        length = 1 if run is None else _V3_RUN_LENGTH.get(run, 0)
        if length == 0 or position + length > len(replaced):
            raise _Malformed("v3 replacement bytes run out")
        pieces.append(replaced[position : position + length])
        position += length
        cursor = token.end()
    pieces.append(encoded[cursor:])
    return _SCHEME_ONE_SLASH.sub(r"\1://", "".join(pieces))
