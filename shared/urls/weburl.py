"""The one URL value of the system: a target parsed as a browser parses it.

Every target enters through ``parse`` (or ``parse_typed``), which runs the WHATWG URL Standard
parser that browsers implement (ada, the parser of Node.js). The value keeps the browser's
serialisation (``href``, which is what the Location header carries) and its parts, cut from that
serialisation; every judgement (Safe Browsing expressions, the URL lists of ``shared.urllists``:
Tenant Allow/Block List and DoNotRewriteUrls, the card, the click record) reads them, so what is
judged is where the browser goes. What the URL Standard refuses, and anything but http(s), raises ``InvalidURL``.

The serialisation of a special-scheme URL is unambiguous: ``@``, ``/``, ``?`` and ``#`` are
percent-encoded in the user info, ``/``, ``?`` and ``#`` in the path, ``#`` in the query, and a host
holds none of them, so cutting ``href`` at the first of each is exact.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from functools import lru_cache
from typing import NamedTuple

# ada's own C binding, called as its ``normalize_url`` calls it but without building the dict of
# parts that function fills and throws away (half of ada's cost per link).
from ada_url.ada_adapter import ffi as _ada_ffi  # type: ignore[attr-defined]
from ada_url.ada_adapter import lib as _ada  # type: ignore[attr-defined]

from shared.urls.errors import InvalidURL, NotWebURL

MAX_URL_LENGTH = 8192
# A link is read several times on its way through the bot (extracted, unwrapped, shown on the
# card): the last values read are kept, keyed by the exact text. Only short texts are kept, so the
# memory held stays bounded whatever the messages hold: a 512-character text serialises to at most
# ~6 KB (12 bytes for an emoji percent-encoded), about 15 MB for all 1,024 in the worst case.
_REMEMBERED = 1024
_REMEMBERED_LENGTH = 512

_DEFAULT_PORT = {"http": 80, "https": 443}
# Leading C0 controls and spaces are dropped by the URL Standard; tabs and newlines anywhere.
_LEADING = "".join(chr(c) for c in range(0x21))
_TABS_AND_NEWLINES = str.maketrans("", "", "\t\r\n")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_PORT_AFTER_NAME = re.compile(r"\d*(?:[/?#]|$)")
_DOTTED_IPV4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
# The IPv6 prefixes whose addresses a browser reaches over IPv4: IPv4-mapped (::ffff:0:0/96,
# what a dual-stack socket connects to) and the NAT64 well-known prefix (64:ff9b::/96).
_IPV4_CARRYING_PREFIXES = (bytes(10) + b"\xff\xff", b"\x00\x64\xff\x9b" + bytes(8))


class HostKind(enum.Enum):
    DOMAIN = "domain"
    IPV4 = "ipv4"
    IPV6 = "ipv6"


class WebURL(NamedTuple):
    """An http(s) URL as the URL Standard serialises it; build it with ``parse``.

    A named tuple, not a frozen dataclass: one is made for every link of every message, and a
    named tuple builds several times faster.
    """

    href: str
    scheme: str  # "http" or "https"
    userinfo: str  # "user:pass" as serialised, "" when there is none
    host: str  # ASCII: a lowercase (punycode) domain, dotted-decimal IPv4, or "[ipv6]"
    port: int | None  # None for the scheme's default port
    path: str  # starts with "/", percent-encoded as serialised
    query: str | None  # without "?"; None when there is no "?", "" for a bare "?"
    fragment: str | None  # without "#"
    kind: HostKind

    def __str__(self) -> str:
        return self.href

    @property
    def location(self) -> str:
        """The value of a Location header sending a browser here (always visible ASCII)."""
        return self.href

    @property
    def network_host(self) -> str:
        """The host a connection goes to: an IPv4-carrying IPv6 host as its IPv4 address, no root dot.

        Lists and verdicts compare this form, so ``[::ffff:5db8:d822]`` is judged as ``93.184.216.34``
        and ``example.com.`` as ``example.com``.
        """
        if self.kind is HostKind.IPV6:
            return _ipv4_inside(self.host) or self.host
        return self.host.rstrip(".") if self.kind is HostKind.DOMAIN else self.host

    @property
    def is_ip(self) -> bool:
        """Whether the host is an address literal (in any of the spellings browsers accept)."""
        return self.kind is not HostKind.DOMAIN

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else _DEFAULT_PORT[self.scheme]


def parse(text: str) -> WebURL:
    """``text`` as a browser reads an absolute link (``href``); raises ``InvalidURL``."""
    if len(text) <= _REMEMBERED_LENGTH:
        return _parse_remembered(text)
    return _parse(text)


def base_url(text: str) -> str:
    """A base URL that paths are appended to (our own public URL, a service's), written as a browser
    reads it and without a trailing slash: ``HTTPS://Links.Example.com\\safe/`` is
    ``https://links.example.com/safe``. Whatever reads it later, with any parser, reads what a browser
    opens. Raises ``InvalidURL``."""
    return parse(text.strip()).href.rstrip("/")


@lru_cache(maxsize=_REMEMBERED)
def _parse_remembered(text: str) -> WebURL:
    # A value is immutable and a function of the text alone; a refusal is not kept (it raises).
    return _parse(text)


def _parse(text: str) -> WebURL:
    if len(text) > MAX_URL_LENGTH:
        raise InvalidURL(text, f"longer than {MAX_URL_LENGTH} characters")
    href = _browser_href(text)
    if href is None:
        raise InvalidURL(text, "a browser would refuse it (not a valid URL)")
    return _from_href(text, href)


def _browser_href(text: str) -> str | None:
    """The URL Standard's serialisation of ``text`` parsed without a base; None when it is refused."""
    try:
        raw = text.encode()
    except UnicodeEncodeError:  # a lone surrogate: no browser's URL can hold it
        return None
    url = _ada.ada_parse(raw, len(raw))
    try:
        if not _ada.ada_is_valid(url):
            return None
        href = _ada.ada_get_href(url)
        serialised: str = _ada_ffi.buffer(href.data, href.length)[:].decode()
        return serialised
    finally:
        _ada.ada_free(url)


def parse_typed(text: str) -> WebURL:
    """``text`` as typed into an address bar or a list: ``http://`` is assumed when no scheme is given.

    ``example.com:8080/x`` is a host with a port, not a scheme ``example.com``; ``//host/x`` is
    ``http://host/x``; any other scheme is kept (and refused unless it is http or https).
    """
    body = text.lstrip(_LEADING)
    if "\t" in body or "\n" in body or "\r" in body:
        body = body.translate(_TABS_AND_NEWLINES)
    if body.startswith("/") and not body.startswith("//"):
        raise InvalidURL(text, "no host (a path alone)")
    match = _SCHEME.match(body)
    if match is not None and (body.startswith("//", match.end()) or not _PORT_AFTER_NAME.match(body, match.end())):
        return parse(text)
    return parse(("http:" if body.startswith("//") else "http://") + body)


def _from_href(text: str, href: str) -> WebURL:
    colon = href.find(":")
    scheme = href[:colon]
    if scheme not in _DEFAULT_PORT:
        raise NotWebURL(text, f"scheme {scheme!r} is not http or https")
    start = colon + 3  # special schemes always serialise "//"
    slash = href.find("/", start)
    authority, rest = href[start:slash], href[slash:]
    at = authority.rfind("@")
    userinfo, hostport = (authority[:at], authority[at + 1 :]) if at >= 0 else ("", authority)
    if hostport.startswith("["):
        close = hostport.index("]") + 1
        host, port_text, kind = hostport[:close], hostport[close + 1 :], HostKind.IPV6
    else:
        host, _, port_text = hostport.partition(":")
        # A serialised domain may end in a digit ("a1"), but only an address is all dotted digits.
        kind = HostKind.IPV4 if host[-1:].isdigit() and _DOTTED_IPV4.fullmatch(host) else HostKind.DOMAIN
    hash_at = rest.find("#")
    fragment = None if hash_at < 0 else rest[hash_at + 1 :]
    if hash_at >= 0:
        rest = rest[:hash_at]
    query_at = rest.find("?")
    query = None if query_at < 0 else rest[query_at + 1 :]
    path = rest if query_at < 0 else rest[:query_at]
    return WebURL(href, scheme, userinfo, host, int(port_text) if port_text else None,
                  path, query, fragment, kind)


def _ipv4_inside(bracketed: str) -> str | None:
    # The URL Standard serialises every address of these prefixes starting so (zeros compressed,
    # lowercase): most addresses are told apart without parsing them.
    if not bracketed.startswith(("[::ffff:", "[64:ff9b::")):
        return None
    packed = ipaddress.IPv6Address(bracketed[1:-1]).packed
    if packed[:12] in _IPV4_CARRYING_PREFIXES:
        return str(ipaddress.IPv4Address(packed[12:]))
    return None


def display_host(text: str | None) -> str | None:
    """The host a browser would open for ``text``, as shown to people (ASCII); None when it opens nothing."""
    if not text:
        return None
    try:
        return parse(text).host
    except InvalidURL:
        return None
