"""Google Safe Browsing (v4) canonical form of a URL.

The steps follow "URLs and Hashing" of the Safe Browsing v4 documentation: trim, drop tab/CR/LF,
drop the fragment, percent-unescape until nothing changes, then rebuild the host (dots, IPv4 and
IPv6 forms, lowercase, IDN to punycode) and the path (``.``/``..`` segments, repeated slashes),
and percent-escape bytes <= 0x20, >= 0x7F, ``#`` and ``%``. Only http and https are accepted.

The work is done on bytes, because unescaping can produce byte sequences that are not UTF-8.
Text becomes bytes as UTF-8, except that C1 control characters (U+0080-U+009F) and lone
surrogates from ``surrogateescape`` decoding stand for the raw byte they came from: that is the
only way such bytes reach a ``str``, and no real text contains them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from typing import NamedTuple
from urllib.parse import unquote_to_bytes

import idna

from shared.urls.errors import InvalidURL

MAX_URL_LENGTH = 8192
WEB_SCHEMES = frozenset({"http", "https"})

_DROPPED_CONTROLS = str.maketrans("", "", "\t\r\n")
_C1_AS_RAW_BYTES = {code: 0xDC00 + code for code in range(0x80, 0xA0)}
_SCHEME = re.compile(rb"([A-Za-z][A-Za-z0-9+.\-]*):")
_PORT_THEN_PATH = re.compile(rb"\d*(?:[/?]|$)")
_AUTHORITY_END = re.compile(rb"[/?]")
_DOT_RUNS = re.compile(rb"\.{2,}")
_POSSIBLE_IPV4 = re.compile(rb"(?:0x[0-9a-f]+|[0-9.])+")
_WINDOWS_IPV4_WITH_JUNK = re.compile(rb"(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}) +[^ ]*")
_OCTAL = re.compile(rb"0[0-7]*")
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


def canonicalize(url: str) -> str:
    """The Safe Browsing canonical form of ``url``; raises ``InvalidURL``."""
    return str(canonical_parts(url))


def canonical_parts(url: str) -> CanonicalURL:
    """Canonicalise ``url`` and return its parts; raises ``InvalidURL``."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURL(url, f"longer than {MAX_URL_LENGTH} characters")
    text = url.strip().translate(_DROPPED_CONTROLS)
    fragment = text.find("#")
    if fragment >= 0:
        text = text[:fragment]
    data = _unescape_fully(_to_bytes(text))
    scheme, rest = _split_scheme(url, data)
    cut = _AUTHORITY_END.search(rest)
    end = len(rest) if cut is None else cut.start()
    authority, remainder = rest[:end], rest[end:]
    host = _canonical_host(url, _host_of(url, authority))
    query_at = remainder.find(b"?")
    if query_at >= 0:
        path, query = _canonical_path(remainder[:query_at]), _escape(remainder[query_at + 1 :])
    else:
        path, query = _canonical_path(remainder), None
    return CanonicalURL(scheme, host, path, query)


def _to_bytes(text: str) -> bytes:
    if text.isascii():
        return text.encode("ascii")
    return text.translate(_C1_AS_RAW_BYTES).encode("utf-8", "surrogateescape")


def _unescape_fully(data: bytes) -> bytes:
    # Each round that changes anything makes the text shorter, so this ends.
    while b"%" in data:
        decoded = unquote_to_bytes(data)
        if decoded == data:
            break
        data = decoded
    return data


def _split_scheme(url: str, data: bytes) -> tuple[str, bytes]:
    match = _SCHEME.match(data)
    if match is not None:
        after = data[match.end() :]
        # "host:8080/x" reads like a scheme followed by a port; a port means no scheme.
        if after.startswith(b"//") or not _PORT_THEN_PATH.match(after):
            scheme = match.group(1).decode("ascii").lower()
            if scheme not in WEB_SCHEMES:
                raise InvalidURL(url, f"scheme {scheme!r} is not http or https")
            # Browsers read "http:/host" and "http:host" as "http://host".
            return scheme, after[2:] if after.startswith(b"//") else after.lstrip(b"/")
    return "http", data[2:] if data.startswith(b"//") else data


def _host_of(url: str, authority: bytes) -> bytes:
    authority = authority[authority.rfind(b"@") + 1 :]
    if authority.startswith(b"["):
        close = authority.find(b"]")
        if close > 0:
            return authority[: close + 1]
    colon = authority.rfind(b":")
    if colon >= 0:
        port = authority[colon + 1 :]
        if port and not port.isdigit():
            raise InvalidURL(url, "port is not a number")
        authority = authority[:colon]
    return authority


def _canonical_host(url: str, raw: bytes) -> str:
    if raw.startswith(b"[") and raw.endswith(b"]"):
        ipv6 = _canonical_ipv6(raw[1:-1])
        if ipv6 is not None:
            return f"[{ipv6}]"
    host = _DOT_RUNS.sub(b".", raw.strip(b"."))
    if not host:
        raise InvalidURL(url, "no host")
    host = host.lower()
    ipv4 = _canonical_ipv4(host)
    if ipv4 is not None:
        return ipv4
    if not host.isascii():
        host = _punycode(host)
    return _escape(host)


def _canonical_ipv4(host: bytes) -> str | None:
    """Dotted-decimal form of any IPv4 spelling a resolver accepts (octal, hex, short, integer)."""
    if len(host) <= 15:
        # Windows resolves "10.192.95.89 xy" to 10.192.95.89.
        junk = _WINDOWS_IPV4_WITH_JUNK.fullmatch(host)
        if junk is not None:
            host = junk.group(1)
    if not _POSSIBLE_IPV4.fullmatch(host):
        return None
    parts = host.split(b".")
    if len(parts) > 4:
        return None
    octets: list[int] = []
    for index, part in enumerate(parts):
        value = _ip_number(part)
        if value is None:
            return None
        width = 5 - len(parts) if index == len(parts) - 1 else 1
        octets.extend((value >> (8 * shift)) & 0xFF for shift in range(width - 1, -1, -1))
    return ".".join(map(str, octets))


def _ip_number(part: bytes) -> int | None:
    try:
        if part.startswith(b"0x"):
            value = int(part[2:], 16)
        elif len(part) > 1 and part.startswith(b"0"):
            if not _OCTAL.fullmatch(part):
                return None
            value = int(part, 8)
        else:
            value = int(part, 10)
    except ValueError:
        return None
    return value if value < 2**32 else None


def _canonical_ipv6(inner: bytes) -> str | None:
    try:
        address = ipaddress.IPv6Address(inner.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None
    if b"." not in inner:
        return address.compressed
    # Keep an embedded IPv4 tail dotted, as written ("::192.9.5.5"), with the head compressed.
    packed = address.packed
    head = ipaddress.IPv6Address(packed[:12] + b"\x00\x00\x00\x01").compressed
    return head[: head.rfind(":") + 1] + str(ipaddress.IPv4Address(packed[12:]))


def _punycode(host: bytes) -> bytes:
    try:
        return idna.encode(host.decode("utf-8"), uts46=True)
    except (UnicodeError, idna.IDNAError):
        pass
    labels = []
    for label in host.split(b"."):
        if not label.isascii():
            # A label IDNA cannot spell is kept as bytes and escaped later.
            with contextlib.suppress(UnicodeError, idna.IDNAError):
                label = idna.encode(label.decode("utf-8"), uts46=True)
        labels.append(label)
    return b".".join(labels)


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
