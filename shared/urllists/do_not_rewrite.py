"""Safe Links "Do not rewrite the following URLs" (DoNotRewriteUrls) entries and their matching.

Syntax and meaning follow Defender's Safe Links page ("Entry syntax for the 'Do not rewrite the
following URLs' list"):

| entry                    | matches                                                          |
| ------------------------ | ---------------------------------------------------------------- |
| `contoso.com`            | `contoso.com` itself, no subdomains, no path                     |
| `*.contoso.com/*`        | subdomains with or without a path; not `contoso.com` itself     |
| `contoso.com/*`          | `contoso.com` and any path below it                              |
| `https://contoso.com/a`  | exactly that path over https, not `/a/b`                         |
| `https://contoso.com/a/*`| `/a` and every path below it                                     |

- At most three `*` per entry; `*` stands for any run of characters. A `*` in the host never
  crosses into the path, so `*contoso.com*` cannot exempt `evil.com/?contoso.com`.
- A trailing `/*` also covers the path before it (`/a/*` covers `/a`; `contoso.com/*` covers the
  bare host), as Defender's table says.
- No scheme covers both http and https; a scheme limits the entry to it. Only http and https.
- Choices where Defender is silent: hosts compare case-insensitively, paths case-sensitively
  (an exemption loosens protection, so it stays narrow); the query is part of the path
  (`https://contoso.com/a` does not cover `/a?x=1`, `/a/*` does); a URL on a non-default port
  needs an entry naming that port; a URL without a scheme is read as http.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from shared.errors import SafeLinksError
from shared.urls import URLError, WebURL, parse_typed

__all__ = [
    "MAX_ENTRY_LENGTH",
    "MAX_WILDCARDS",
    "Exemption",
    "RewriteExemptionError",
    "RewriteExemptions",
    "parse_exemption",
]

MAX_WILDCARDS = 3
MAX_ENTRY_LENGTH = 2048

_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)
_HOST = re.compile(r"[a-z0-9_*-]+(?:\.[a-z0-9_*-]+)*\.?\Z")
_PORT = re.compile(r"[0-9]{1,5}\Z")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class RewriteExemptionError(SafeLinksError, ValueError):
    """A DoNotRewriteUrls entry (or a URL checked against one) that cannot be used."""


@dataclass(frozen=True, slots=True)
class _Glob:
    """`*` as any run of characters; matched left to right without backtracking."""

    parts: tuple[str, ...]

    @classmethod
    def of(cls, pattern: str) -> _Glob:
        return cls(tuple(pattern.split("*")))

    def match(self, text: str) -> bool:
        parts = self.parts
        if len(parts) == 1:
            return text == parts[0]
        first, last = parts[0], parts[-1]
        if len(text) < len(first) + len(last):
            return False
        if not text.startswith(first) or not text.endswith(last):
            return False
        pos, end = len(first), len(text) - len(last)
        for middle in parts[1:-1]:
            found = text.find(middle, pos, end)
            if found == -1:
                return False
            pos = found + len(middle)
        return True


@dataclass(frozen=True, slots=True)
class Exemption:
    """One parsed entry; `entry` is its normalised text."""

    entry: str
    scheme: str | None
    host: _Glob
    port: int | None
    path: _Glob | None
    path_base: str | None  # with a trailing '/*': the path it also covers on its own

    def _matches(self, scheme: str, host: str, port: int | None, rest: str) -> bool:
        if self.scheme is not None and scheme != self.scheme:
            return False
        wanted = self.port if self.port is not None else _DEFAULT_PORTS[scheme]
        if (port if port is not None else _DEFAULT_PORTS[scheme]) != wanted:
            return False
        if not self.host.match(host):
            return False
        if self.path is None:
            return rest == ""
        if self.path_base is not None and rest == self.path_base:
            return True
        return self.path.match(rest)

    def matches(self, url: str | WebURL) -> bool:
        """Whether this entry exempts `url` from rewriting."""
        parts = _url_parts(url)
        return parts is not None and self._matches(*parts)


def parse_exemption(entry: str) -> Exemption:
    """Parse one DoNotRewriteUrls entry; raise `RewriteExemptionError` saying what is wrong."""
    text = entry.strip()
    if not text:
        raise RewriteExemptionError("the entry is empty")
    if len(text) > MAX_ENTRY_LENGTH:
        raise RewriteExemptionError(f"the entry is longer than {MAX_ENTRY_LENGTH} characters")
    if not text.isascii():
        raise RewriteExemptionError(f"{entry!r}: use Punycode (xn--) and percent-encoding")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 or ch in "'\"" for ch in text):
        raise RewriteExemptionError(
            f"{entry!r}: whitespace, control characters and quotes aren't allowed"
        )
    if "#" in text:
        raise RewriteExemptionError(f"{entry!r}: fragments ('#') aren't allowed")
    if text.count("*") > MAX_WILDCARDS:
        raise RewriteExemptionError(f"{entry!r}: at most {MAX_WILDCARDS} wildcards ('*')")
    scheme: str | None = None
    m = _SCHEME.match(text)
    if m:
        scheme = m.group(1).lower()
        if scheme not in _DEFAULT_PORTS:
            raise RewriteExemptionError(f"{entry!r}: only http and https links are rewritten")
        text = text[m.end() :]
    slash = text.find("/")
    netloc, path = (text, "") if slash == -1 else (text[:slash], text[slash:])
    if "@" in netloc:
        raise RewriteExemptionError(f"{entry!r}: user names and passwords aren't allowed")
    host, port = _split_port(netloc.lower(), entry)
    if not host or not host.strip("*."):
        raise RewriteExemptionError(f"{entry!r}: name a host ('*' alone would exempt everything)")
    if path == "/":
        path = ""
    path_glob = _Glob.of(path) if path else None
    base = path[:-2] if path.endswith("/*") else None
    normal = (f"{scheme}://" if scheme else "") + host + (f":{port}" if port else "") + path
    return Exemption(normal, scheme, _Glob.of(host.rstrip(".")), port, path_glob, base)


def _split_port(netloc: str, entry: str) -> tuple[str, int | None]:
    if netloc.startswith("["):
        end = netloc.find("]")
        try:
            host = ipaddress.IPv6Address(netloc[1:end]).compressed if end > 0 else ""
        except ValueError:
            host = ""
        if not host:
            raise RewriteExemptionError(f"{entry!r}: invalid IPv6 address")
        tail = netloc[end + 1 :]
        if tail and not (tail.startswith(":") and _PORT.match(tail[1:])):
            raise RewriteExemptionError(f"{entry!r}: invalid port")
        return host, int(tail[1:]) if tail else None
    host, sep, port_text = netloc.partition(":")
    if not _HOST.match(host):
        raise RewriteExemptionError(f"{entry!r}: {host!r} is not a host name")
    if not sep:
        return host, None
    if not _PORT.match(port_text) or not 0 < int(port_text) < 65536:
        raise RewriteExemptionError(f"{entry!r}: invalid port")
    return host, int(port_text)


def _url_parts(url: str | WebURL) -> tuple[str, str, int | None, str] | None:
    """Scheme, host, port and path+query of the browser's parse of `url`; None when no browser opens it.

    A URL that does not parse is never exempt: it gets wrapped, and the proxy refuses it.
    """
    if isinstance(url, WebURL):
        value = url
    else:
        try:
            value = parse_typed(url)
        except URLError:
            return None
    host = value.network_host
    if host.startswith("["):
        host = host[1:-1]
    rest = value.path + ("?" + value.query if value.query else "")
    return value.scheme, host, value.port, "" if rest == "/" else rest


class RewriteExemptions:
    """One policy's DoNotRewriteUrls list; `matches(url)` says whether to leave `url` unwrapped."""

    __slots__ = ("_by_host", "_globbed", "entries")

    def __init__(self, entries: Iterable[str]) -> None:
        parsed = [parse_exemption(e) for e in entries]
        self.entries: tuple[str, ...] = tuple(p.entry for p in parsed)
        by_host: dict[str, list[Exemption]] = {}
        globbed: list[Exemption] = []
        for p in parsed:
            if len(p.host.parts) == 1:
                by_host.setdefault(p.host.parts[0], []).append(p)
            else:
                globbed.append(p)
        self._by_host = by_host
        self._globbed = tuple(globbed)

    def __len__(self) -> int:
        return len(self.entries)

    def matches(self, url: str | WebURL) -> bool:
        """Whether any entry exempts `url` (with or without a scheme) from rewriting."""
        if not self.entries:
            return False
        parts = _url_parts(url)
        if parts is None:
            return False
        candidates = self._by_host.get(parts[1], ())
        return any(e._matches(*parts) for e in candidates) or any(
            e._matches(*parts) for e in self._globbed
        )
