"""Reading a wrapped link's query string strictly: anything odd is refused, never guessed at."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes, urlsplit

MAX_URL_BYTES = 8192
_ALLOWED_SCHEMES = ("http", "https")


class BadLink(Exception):
    """The request is not a well-formed wrapped link. ``status`` is the 4xx to answer with."""

    def __init__(self, status: int, title: str, message: str, url: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.url = url


@dataclass(frozen=True, slots=True)
class LinkParams:
    url: str
    data: str
    sig: str


def parse_link_query(raw_query: str) -> LinkParams:
    """The url/data/sig of a wrapped link, from the raw (still percent-encoded) query string."""
    if len(raw_query) > 4 * MAX_URL_BYTES:
        raise BadLink(414, "This link is too long", "The link is longer than Safe Links accepts.")
    fields: dict[str, str] = {}
    for part in raw_query.split("&"):
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise BadLink(400, "This link is damaged", "The link's parameters could not be read.")
        try:
            key, value = _unquote(key), _unquote(value)
        except UnicodeDecodeError:
            raise BadLink(400, "This link is damaged",
                          "The link contains characters that are not valid text.") from None
        if key in fields:
            # Two values for one name is how parameter-pollution attacks start.
            raise BadLink(400, "This link is damaged", f"The link has more than one '{key}' parameter.")
        fields[key] = value
        if len(fields) > 8:
            raise BadLink(400, "This link is damaged", "The link has too many parameters.")
    missing = [k for k in ("url", "data", "sig") if not fields.get(k)]
    if missing:
        raise BadLink(400, "This link is incomplete",
                      f"The link is missing its {', '.join(missing)} part. It may have been cut off when copied.")
    url = fields["url"]
    if len(url.encode("utf-8")) > MAX_URL_BYTES:
        raise BadLink(414, "This link is too long", "The address is longer than 8 KB, which Safe Links refuses.")
    check_target(url)
    return LinkParams(url, fields["data"], fields["sig"])


def _unquote(text: str) -> str:
    """Form-decode one query component, refusing invalid UTF-8 instead of replacing it."""
    if "%" not in text and "+" not in text:
        return text
    return unquote_to_bytes(text.replace("+", " ")).decode("utf-8")


def check_target(url: str) -> None:
    """Only plain http(s) addresses are ever sent on to."""
    if _CONTROL.search(url):
        raise BadLink(400, "This link is damaged", "The address contains control characters (such as line breaks).")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise BadLink(400, "This link is damaged", "The address could not be read.", url) from None
    if parts.scheme.lower() not in _ALLOWED_SCHEMES:
        raise BadLink(400, "This kind of link can't be opened",
                      "Safe Links only opens web addresses (http and https).", url)
    try:
        host = parts.hostname
    except ValueError:
        host = None
    if not host:
        raise BadLink(400, "This link is damaged", "The address has no website name.", url)


_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))
_PLAIN = re.compile(r"[\x21-\x7e]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def location_header(url: str) -> str:
    """The URL as a Location header value, byte for byte what was signed except where HTTP forbids.

    Percent-escapes are kept as they are (aiohttp's redirect classes would normalise ``%2F`` to ``/``,
    changing the address); only spaces and non-ASCII are escaped, and a Unicode host becomes Punycode.
    """
    if _PLAIN.fullmatch(url):
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    host = parts.hostname or ""
    if host and not host.isascii():
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError:
            ascii_host = host
        netloc = netloc.replace(host, ascii_host) if host in netloc else netloc
    rebuilt = f"{parts.scheme}://{netloc}{url.split(parts.netloc, 1)[1] if parts.netloc else ''}"
    return quote(rebuilt, safe=_HEADER_SAFE)
