"""Google Safe Browsing (v4) canonical form of a URL, made from the browser's parse of it.

The URL is first read as a browser reads it (``shared.urls.weburl``): that settles the scheme, the
authority (``\\`` ends it, the last ``@`` starts the host), the host (percent-decoded, UTS #46,
every IPv4 spelling to dotted decimal) and the path's dot segments exactly as the browser will, and
refuses what the browser refuses. Then the steps of "URLs and Hashing" of the Safe Browsing v4
documentation that go beyond the browser apply: drop the fragment and the port, strip and collapse
the host's dots, percent-unescape the path and query until nothing changes, resolve ``.``/``..``
segments and repeated slashes again, and percent-escape bytes <= 0x20, >= 0x7F, ``#`` and ``%``.

A URL without a scheme is read as ``http://`` (feed entries are often bare names).
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import unquote_to_bytes

from shared.urls.errors import InvalidURL
from shared.urls.weburl import MAX_URL_LENGTH, HostKind, WebURL, parse_typed

__all__ = ["MAX_URL_LENGTH", "CanonicalURL", "canonical_host", "canonical_parts", "canonicalize"]

_DOT_RUNS = re.compile(r"\.{2,}")
# Module constants: an enum member looked up on its class is slow.
_DOMAIN, _IPV4 = HostKind.DOMAIN, HostKind.IPV4
_NEEDS_ESCAPE = re.compile(rb"[\x00-\x20\x7f-\xff#%]")
_ESCAPED_BYTE = tuple(
    chr(b) if 0x20 < b < 0x7F and b not in (0x23, 0x25) else f"%{b:02X}" for b in range(256)
)


class CanonicalURL(NamedTuple):
    """A canonical URL cut into the parts that lookup expressions are made of."""

    scheme: str
    host: str
    path: str
    query: str | None  # None: no "?" at all; "": a "?" with nothing after it

    def __str__(self) -> str:
        tail = "" if self.query is None else "?" + self.query
        return f"{self.scheme}://{self.host}{self.path}{tail}"


def canonicalize(url: str | WebURL) -> str:
    """The Safe Browsing canonical form of ``url``; raises ``InvalidURL``."""
    return str(canonical_parts(url))


def canonical_parts(url: str | WebURL) -> CanonicalURL:
    """Canonicalise ``url`` (text is parsed as a browser would) and return its parts; raises ``InvalidURL``."""
    value = url if isinstance(url, WebURL) else parse_typed(url)
    host = canonical_host(value)
    path = _canonical_path(_unescape_fully(value.path.encode("ascii")))
    query = None if value.query is None else _escape(_unescape_fully(value.query.encode("ascii")))
    return CanonicalURL(value.scheme, host, path, query)


def canonical_host(value: WebURL) -> str:
    """The host of ``value`` as its canonical form and lookup expressions have it (``[::1]``, ``93.184.216.34``,
    ``a.example``); raises ``InvalidURL`` for a domain of dots alone."""
    kind = value.kind
    if kind is not _DOMAIN:
        return value.host if kind is _IPV4 else value.network_host
    # Written for speed (the click log reads this for every new link): most hosts have no dot run.
    host = value.host.strip(".")
    if ".." in host:
        host = _DOT_RUNS.sub(".", host)
    if not host:
        raise InvalidURL(value.href, "no host")
    return host


def _unescape_fully(data: bytes) -> bytes:
    # Each round that changes anything makes the text shorter, so this ends.
    while b"%" in data:
        decoded = unquote_to_bytes(data)
        if decoded == data:
            break
        data = decoded
    return data


def _canonical_path(raw: bytes) -> str:
    if raw in (b"", b"/"):
        return "/"
    segments: list[bytes] = []
    for segment in raw.split(b"/"):
        if segment in (b"", b"."):
            continue
        if segment == b"..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    if not segments:
        return "/"
    trailing = raw.endswith((b"/", b"/.", b"/.."))
    return _escape(b"/" + b"/".join(segments) + (b"/" if trailing else b""))


def _escape(data: bytes) -> str:
    if _NEEDS_ESCAPE.search(data) is None:
        return data.decode("ascii")
    return "".join([_ESCAPED_BYTE[b] for b in data])
