"""Tenant Allow/Block List (TABL) for URLs: entry syntax, matching, expiry. Pure domain, no storage.

The syntax and match tables follow Defender's "Allow or block URLs using the Tenant Allow/Block
List" page (URL syntax section and its scenario tables):

- Hosts are Punycode only, contain a period with >= 1 character left and >= 2 right of it, and end
  in a known public suffix (so `test.pdf` is refused as a filename, `contoso` as not resolvable).
  IPv4/IPv6 are fine; ports, protocols, user:pass, quotes and fragments are not; <= 250 characters.
- `contoso.com`: an allow matches that host with no path; a block also matches every path, every
  subdomain, and the domain anywhere in the URL as a whole name (`test.com/q=contoso.com`), never
  a longer name (`abc-contoso.com`).
- `*.contoso.com` subdomains (no path), `*.contoso.com/*` subdomains with a path,
  `contoso.com/*` / `contoso.com/a/*` a path below (at least one character after the `/`),
  `~contoso.com` the domain and subdomains without a path, `~contoso.com~` the domain and
  subdomains with any path, or the domain right after a `/` in another URL's path,
  `*.TLD/*` (blocks) every host under a public suffix, `1.2.3.4` exactly, `1.2.3.4/*` its paths.
- Left wildcards and tildes are block-only; Defender accepts them for allows only through the
  advanced-delivery list (`parse_entry(..., advanced_delivery=True)`).

Choices where Defender is silent (documented here, pinned by tests):
- Matching is case-insensitive in host and path; the fragment is ignored; a lone `/` path is
  the same as no path.
- A block for a host with a path (`contoso.com/a`) covers that path, its subpaths and
  subdomains (blocks imply more, as the plain-domain row shows); an allow covers it exactly.
  IP entries never imply subpaths (`1.2.3.4` block does not match `1.2.3.4/a`).
- Block entries ignore the URL's port; allow entries match only the scheme's default port.
- When an allow and a block both match, the block wins ("block entries take precedence over
  allow entries", TABL overview page).
- Expiry: a block without a date expires 30 days after creation (`default_expiry`). An allow
  without a date uses Defender's "remove 45 days after last used date" (`RemoveAfter 45`): it
  lapses 45 days after its last use, or after creation if never used; `default_expiry` gives
  allows Defender's 30-day portal default when the caller wants a fixed date instead.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import tldextract

from shared.errors import SafeLinksError
from shared.urls import URLError, WebURL, parse_typed
from shared.urls.domains import suffix_parts

__all__ = [
    "ALLOW_DEFAULT_DAYS",
    "ALLOW_MAX_DAYS",
    "BLOCK_DEFAULT_DAYS",
    "BLOCK_MAX_DAYS",
    "MAX_ENTRY_LENGTH",
    "REMOVE_AFTER_UNUSED",
    "Pattern",
    "TablAction",
    "TablEntry",
    "TablError",
    "TablIndex",
    "default_expiry",
    "is_expired",
    "parse_entry",
    "validate_expiry",
]

MAX_ENTRY_LENGTH = 250
BLOCK_DEFAULT_DAYS = 30
BLOCK_MAX_DAYS = 90
ALLOW_DEFAULT_DAYS = 30
ALLOW_MAX_DAYS = 30
REMOVE_AFTER_UNUSED = timedelta(days=45)

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")
_HAS_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
# A host-like name inside a URL: used to find `contoso.com` in `test.com/q=contoso.com`. It starts
# only where a name can start and never gives characters back, so a scan is linear in the URL.
_NAME_TOKEN = re.compile(r"(?<![a-z0-9_-])[a-z0-9_-]++(?:\.[a-z0-9_-]++)++")
_BAD_CHARS = frozenset("'\"#\\<>^`{|}")


class TablError(SafeLinksError, ValueError):
    """An entry or a URL that the Tenant Allow/Block List cannot accept."""


class TablAction(enum.Enum):
    ALLOW = "allow"
    BLOCK = "block"


class _Host(enum.Enum):
    EXACT = "exact"  # host == anchor
    STRICT_SUB = "strict-sub"  # host is a subdomain of anchor
    SELF_OR_SUB = "self-or-sub"  # host == anchor or a subdomain of it


class _Path(enum.Enum):
    EMPTY = "empty"  # no path, no query
    EXACT = "exact"  # rest == path
    SUBTREE = "subtree"  # rest == path, or below it
    BELOW = "below"  # rest starts with path (ending in '/') and is longer
    ANY = "any"


class _Token(enum.Enum):
    NONE = "none"
    ANYWHERE = "anywhere"  # the name anywhere in the URL, as a whole name
    AFTER_SLASH = "after-slash"  # the name right after a '/' in the path


def _host_suffixes(host: str) -> list[str]:
    """`a.b.c` -> [`a.b.c`, `b.c`, `c`], only those short enough to be an entry's host.

    An entry's host is at most `MAX_ENTRY_LENGTH` characters, so longer suffixes can match nothing;
    leaving them out keeps a long dotted name in a path from costing time quadratic in its length.
    """
    if len(host) > MAX_ENTRY_LENGTH:
        cut = host.find(".", len(host) - MAX_ENTRY_LENGTH - 1)
        if cut == -1:
            return []
        host = host[cut + 1 :]
    out = [host]
    i = host.find(".")
    while i != -1:
        out.append(host[i + 1 :])
        i = host.find(".", i + 1)
    return out


class _UrlView:
    """A URL cut into what matching needs, from the browser's parse of it (`shared.urls`)."""

    __slots__ = ("_tokens", "decoded", "default_port", "extra", "host", "rest")

    def __init__(self, url: str | WebURL) -> None:
        if isinstance(url, WebURL):
            value = url
        else:
            if not url.strip():
                raise TablError("URL is empty")
            try:
                value = parse_typed(url)
            except URLError as exc:
                raise TablError(str(exc)) from None
        host = value.network_host
        # Entries hold IPv6 addresses without brackets; the browser's serialisation is already compressed.
        self.host = host[1:-1] if host.startswith("[") else host
        rest = value.path + ("?" + value.query if value.query else "")
        self.rest = "" if rest == "/" else rest.lower()
        # Servers decode escapes in the path: a block also looks at the decoded path, an allow does not.
        self.decoded = unquote(self.rest) if "%" in self.rest else self.rest
        self.default_port = value.port is None
        self.extra = unquote(value.userinfo).lower()
        self._tokens: list[tuple[str, bool]] | None = None

    def tokens(self) -> list[tuple[str, bool]]:
        """Names found outside the host: (name, preceded by '/ in the path')."""
        if self._tokens is None:
            found: list[tuple[str, bool]] = []
            for text, in_path in ((self.decoded, True), (self.extra, False)):
                for m in _NAME_TOKEN.finditer(text):
                    start = m.start()
                    found.append((m.group(), in_path and start > 0 and text[start - 1] == "/"))
            self._tokens = found
        return self._tokens


@dataclass(frozen=True, slots=True)
class Pattern:
    """One parsed TABL URL entry; `value` is the normalised entry text."""

    value: str
    action: TablAction
    anchor: str
    host_mode: _Host
    path_mode: _Path
    path: str
    token_mode: _Token
    is_ip: bool

    def matches(self, url: str | WebURL) -> bool:
        """Whether this entry applies to `url` (a parsed URL, or text with or without a scheme)."""
        return self._matches_view(_UrlView(url))

    def _matches_view(self, view: _UrlView) -> bool:
        if self.action is TablAction.ALLOW and not view.default_port:
            return False
        if self._host_and_path_match(view, view.rest):
            return True
        if self.action is TablAction.BLOCK and view.decoded is not view.rest and self._host_and_path_match(
            view, view.decoded
        ):
            return True
        if self.token_mode is _Token.NONE:
            return False
        for name, after_slash in view.tokens():
            if self.token_mode is _Token.AFTER_SLASH and not after_slash:
                continue
            if name == self.anchor or name.endswith("." + self.anchor):
                return True
        return False

    def _host_and_path_match(self, view: _UrlView, rest: str) -> bool:
        host, anchor = view.host, self.anchor
        if self.host_mode is _Host.EXACT:
            if host != anchor:
                return False
        elif self.host_mode is _Host.STRICT_SUB:
            if not host.endswith("." + anchor):
                return False
        elif host != anchor and not host.endswith("." + anchor):
            return False
        path = self.path
        match self.path_mode:
            case _Path.EMPTY:
                return rest == ""
            case _Path.EXACT:
                # An entry cannot hold a literal '*' (it is the wildcard): '%2A' stands for one.
                return rest == path or ("*" in rest and rest.replace("*", "%2a") == path)
            case _Path.SUBTREE:
                return (
                    rest == path
                    or rest.startswith(path.rstrip("/") + "/")
                    or ("?" not in path and rest.startswith(path + "?"))
                )
            case _Path.BELOW:
                return len(rest) > len(path) and rest.startswith(path)
            case _Path.ANY:
                return True
        return False  # pragma: no cover - the match above is exhaustive


def _check_hostname(host: str, entry: str) -> tldextract.ExtractResult:
    if "." not in host:
        raise TablError(f"{entry!r}: the hostname must contain a period")
    if host.startswith("."):
        raise TablError(f"{entry!r}: the hostname needs at least one character left of the period")
    if len(host.rsplit(".", 1)[1]) < 2:
        raise TablError(
            f"{entry!r}: the hostname needs at least two characters right of the period"
        )
    for label in host.split("."):
        if not _LABEL.match(label):
            raise TablError(f"{entry!r}: {label!r} is not a valid hostname label")
    parsed = suffix_parts(host)
    if not parsed.suffix:
        last = host.rsplit(".", 1)[1]
        raise TablError(
            f"{entry!r}: {last!r} is not a known top-level domain "
            "(filename extensions like 'test.pdf' aren't allowed)"
        )
    if not parsed.domain:
        raise TablError(f"{entry!r}: {host!r} is a public suffix, not a domain")
    return parsed


def _split_host_path(text: str, entry: str) -> tuple[str, str]:
    if text.startswith("["):
        end = text.find("]")
        if end == -1:
            raise TablError(f"{entry!r}: unclosed '[' in an IPv6 address")
        host, path = text[1:end], text[end + 1 :]
        if path.startswith(":"):
            raise TablError(f"{entry!r}: ports aren't allowed")
        if path and not path.startswith("/"):
            raise TablError(f"{entry!r}: only a path may follow ']'")
        return host, path
    slash = text.find("/")
    return (text, "") if slash == -1 else (text[:slash], text[slash:])


def _as_ip(host: str) -> str | None:
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return None


def _check_text(entry: str) -> str:
    text = entry.strip()
    if not text:
        raise TablError("the entry is empty")
    if len(text) > MAX_ENTRY_LENGTH:
        raise TablError(f"the entry is longer than {MAX_ENTRY_LENGTH} characters")
    if not text.isascii():
        raise TablError(f"{entry!r}: Unicode isn't supported; enter the host in Punycode (xn--)")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise TablError(f"{entry!r}: whitespace and control characters aren't allowed")
    if "'" in text or '"' in text:
        raise TablError(f"{entry!r}: quotes aren't allowed")
    if _HAS_SCHEME.match(text):
        raise TablError(f"{entry!r}: protocols aren't allowed (leave out 'http://')")
    if "#" in text:
        raise TablError(f"{entry!r}: fragments ('#') aren't allowed")
    bad = sorted(set(text) & _BAD_CHARS)
    if bad:
        raise TablError(f"{entry!r}: characters {''.join(bad)!r} aren't allowed")
    return text


def parse_entry(value: str, action: TablAction, *, advanced_delivery: bool = False) -> Pattern:
    """Parse a TABL URL entry with Defender's syntax; raise `TablError` saying why it is refused.

    `advanced_delivery` admits left wildcards and tildes in allow entries, as Defender's
    AdvancedDelivery list subtype does; the ordinary tenant list refuses them for allows.
    """
    text = _check_text(value)
    entry = text
    left_tilde = text.startswith("~")
    right_tilde = left_tilde and len(text) > 1 and text.endswith("~")
    body = text[1:-1] if right_tilde else text[1:] if left_tilde else text
    if "~" in body:
        raise TablError(
            f"{entry!r}: '~' is allowed only first ('~contoso.com') or first and last "
            "('~contoso.com~')"
        )
    host, path = _split_host_path(body, entry)
    if "@" in host:
        raise TablError(f"{entry!r}: user names and passwords aren't allowed")
    if path == "/":
        path = ""
    stars = host.count("*") + path.count("*")
    if host in ("*", "*.*") or body in ("*", "*.*"):
        raise TablError(f"{entry!r}: non-descriptive wildcards aren't allowed")
    if host.count("*") > 1:
        raise TablError(f"{entry!r}: only one wildcard is allowed in the host")
    if stars > 2 or path.count("*") > 1:
        raise TablError(f"{entry!r}: double wildcards aren't allowed")

    ip = _as_ip(host) or _as_ip(host.replace("*", ""))
    if ip is not None:
        return _ip_pattern(entry, ip, host, path, action, left_tilde)
    if ":" in host:
        raise TablError(f"{entry!r}: ports aren't allowed")

    left_wild = host.startswith("*")
    if left_wild:
        if not host.startswith("*."):
            raise TablError(f"{entry!r}: a left wildcard must be followed by '.'")
        host = host[2:]
    if host.endswith("*"):
        raise TablError(f"{entry!r}: a right wildcard must follow '/'")
    if "*" in host:
        raise TablError(f"{entry!r}: middle wildcards aren't allowed")
    host = host.lower()
    if left_tilde and left_wild:
        raise TablError(f"{entry!r}: '~' and '*' can't be combined")
    if (left_wild or left_tilde) and action is TablAction.ALLOW and not advanced_delivery:
        raise TablError(
            f"{entry!r}: left wildcards and '~' are for block entries only "
            "(allows of that form need the advanced delivery list)"
        )
    if left_tilde and path:
        raise TablError(f"{entry!r}: '~' entries take no path")

    path_mode, path = _parse_path(path, entry)
    if left_wild and path_mode is _Path.BELOW and path == "/" and _is_public_suffix(host):
        if action is TablAction.ALLOW:
            raise TablError(f"{entry!r}: a whole top-level domain can only be blocked")
        return Pattern(
            f"*.{host}/*", action, host, _Host.SELF_OR_SUB, _Path.ANY, "", _Token.NONE, False
        )
    if left_wild and ("." not in host or _is_public_suffix(host)):
        raise TablError(
            f"{entry!r}: '*.{host}' isn't a resolvable domain (write '*.{host}/*' to block it)"
        )
    _check_hostname(host, entry)
    normal = (
        ("~" if left_tilde else "")
        + ("*." if left_wild else "")
        + host
        + (path + ("*" if path_mode is _Path.BELOW else ""))
        + ("~" if right_tilde else "")
    )
    if left_tilde:
        if right_tilde:
            return Pattern(
                normal, action, host, _Host.SELF_OR_SUB, _Path.ANY, "", _Token.AFTER_SLASH, False
            )
        return Pattern(normal, action, host, _Host.SELF_OR_SUB, _Path.EMPTY, "", _Token.NONE, False)
    host_mode = _Host.STRICT_SUB if left_wild else _Host.EXACT
    token_mode = _Token.NONE
    if action is TablAction.BLOCK and not left_wild:
        if path_mode is _Path.EMPTY:
            host_mode, path_mode, token_mode = _Host.SELF_OR_SUB, _Path.ANY, _Token.ANYWHERE
        elif path_mode is _Path.EXACT:
            host_mode, path_mode = _Host.SELF_OR_SUB, _Path.SUBTREE
    return Pattern(normal, action, host, host_mode, path_mode, path, token_mode, False)


def _is_public_suffix(host: str) -> bool:
    parsed = suffix_parts(host)
    return bool(parsed.suffix) and not parsed.domain and not parsed.subdomain


def _parse_path(path: str, entry: str) -> tuple[_Path, str]:
    if not path:
        return _Path.EMPTY, ""
    if "*" not in path:
        return _Path.EXACT, path.lower()
    if not path.endswith("*"):
        raise TablError(f"{entry!r}: middle wildcards aren't allowed")
    if not path.endswith("/*"):
        raise TablError(f"{entry!r}: a right wildcard must follow '/'")
    return _Path.BELOW, path[:-1].lower()


def _ip_pattern(
    entry: str, ip: str, host: str, path: str, action: TablAction, tilde: bool
) -> Pattern:
    if "*" in host:
        raise TablError(f"{entry!r}: wildcards aren't allowed in IP addresses")
    if tilde:
        raise TablError(f"{entry!r}: '~' isn't allowed with IP addresses")
    path_mode, path = _parse_path(path, entry)
    shown = f"[{ip}]" if ":" in ip and path_mode is not _Path.EMPTY else ip
    normal = shown + path + ("*" if path_mode is _Path.BELOW else "")
    return Pattern(normal, action, ip, _Host.EXACT, path_mode, path, _Token.NONE, True)


@dataclass(frozen=True, slots=True)
class TablEntry:
    """A stored TABL URL entry (`value` as entered, normalised)."""

    value: str
    action: TablAction
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    notes: str = ""
    id: int | None = None
    pattern: Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pattern = parse_entry(self.value, self.action)
        object.__setattr__(self, "value", pattern.value)
        object.__setattr__(self, "pattern", pattern)


def default_expiry(action: TablAction, now: datetime) -> datetime | None:
    """Defender's default removal date for a new entry created at `now` (30 days either way)."""
    days = BLOCK_DEFAULT_DAYS if action is TablAction.BLOCK else ALLOW_DEFAULT_DAYS
    return now + timedelta(days=days)


def validate_expiry(action: TablAction, expires_at: datetime | None, now: datetime) -> None:
    """Refuse an expiry Defender would refuse: past dates, blocks > 90 days, allows > 30 days.

    `None` means "never" for blocks and "45 days after last use" for allows.
    """
    if expires_at is None:
        return
    if expires_at <= now:
        raise TablError("the expiry date is in the past")
    limit = BLOCK_MAX_DAYS if action is TablAction.BLOCK else ALLOW_MAX_DAYS
    if expires_at - now > timedelta(days=limit):
        raise TablError(f"{action.value} entries can expire at most {limit} days from now")


def is_expired(entry: TablEntry, now: datetime) -> bool:
    """Whether the entry no longer applies at `now` (see the module notes on allows)."""
    if entry.expires_at is not None:
        return entry.expires_at <= now
    if entry.action is TablAction.ALLOW:
        return (entry.last_used_at or entry.created_at) + REMOVE_AFTER_UNUSED <= now
    return False


class TablIndex:
    """All live entries, indexed by anchor host so a lookup touches only candidate entries."""

    __slots__ = ("_by_anchor", "_by_name", "_size")

    def __init__(self, entries: Iterable[TablEntry]) -> None:
        by_anchor: dict[str, list[TablEntry]] = {}
        by_name: dict[str, list[TablEntry]] = {}
        size = 0
        for entry in entries:
            pattern = entry.pattern
            by_anchor.setdefault(pattern.anchor, []).append(entry)
            if pattern.token_mode is not _Token.NONE:
                by_name.setdefault(pattern.anchor, []).append(entry)
            size += 1
        self._by_anchor = by_anchor
        self._by_name = by_name
        self._size = size

    def __len__(self) -> int:
        return self._size

    def match(self, url: str | WebURL, now: datetime | None = None) -> TablEntry | None:
        """The entry deciding `url`: a block over an allow, then the most specific anchor."""
        view = _UrlView(url)
        when = now if now is not None else datetime.now(UTC)
        best: TablEntry | None = None
        for entry in self._candidates(view):
            if best is not None and not _better(entry, best):
                continue
            if is_expired(entry, when) or not entry.pattern._matches_view(view):
                continue
            best = entry
        return best

    def _candidates(self, view: _UrlView) -> Iterable[TablEntry]:
        by_anchor = self._by_anchor
        for suffix in [view.host] if ":" in view.host else _host_suffixes(view.host):
            found = by_anchor.get(suffix)
            if found:
                yield from found
        if self._by_name and (view.rest or view.extra):
            by_name = self._by_name
            # Each entry is tried once, however often its name recurs: a path repeating a name
            # thousands of times must not try the entry (which scans every name) thousands of times.
            seen: set[str] = set()
            for name, _after_slash in view.tokens():
                for suffix in _host_suffixes(name):
                    if suffix in seen:
                        continue
                    found = by_name.get(suffix)
                    if found:
                        seen.add(suffix)
                        yield from found


def _better(entry: TablEntry, than: TablEntry) -> bool:
    if entry.action is not than.action:
        return entry.action is TablAction.BLOCK
    return len(entry.pattern.anchor) > len(than.pattern.anchor)
