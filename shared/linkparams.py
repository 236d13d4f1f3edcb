"""Reading a wrapped link's query string strictly: anything odd is refused, never guessed at."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from shared.errors import SafeLinksError
from shared.urls import NotWebURL, URLError, WebURL, parse

MAX_URL_BYTES = 8192
_ALLOWED_SCHEMES = ("http", "https")


class BadLink(SafeLinksError):
    """The request is not a well-formed wrapped link. ``status`` is the 4xx to answer with."""

    def __init__(self, status: int, title: str, message: str, url: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.url = url


@dataclass(frozen=True, slots=True)
class LinkParams:
    url: str  # as signed
    data: str
    sig: str
    target: WebURL  # the browser's parse of ``url``: what is judged, recorded and redirected to


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
    return LinkParams(url, fields["data"], fields["sig"], check_target(url))


def _unquote(text: str) -> str:
    """Form-decode one query component, refusing invalid UTF-8 instead of replacing it."""
    if "%" not in text and "+" not in text:
        return text
    return unquote_to_bytes(text.replace("+", " ")).decode("utf-8")


def check_target(url: str) -> WebURL:
    """The target as the browser will read it; only http(s) addresses a browser opens are sent on to."""
    if _CONTROL.search(url):
        raise BadLink(400, "This link is damaged", "The address contains control characters (such as line breaks).")
    try:
        return parse(url)
    except NotWebURL:
        raise BadLink(400, "This kind of link can't be opened",
                      "Safe Links only opens web addresses (http and https).", url) from None
    except URLError:
        raise BadLink(400, "This link is damaged",
                      "The address is not one a browser would open (its website name or port is not valid).",
                      url) from None


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
