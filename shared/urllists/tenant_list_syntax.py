"""Defender's Tenant Allow/Block List entry syntax: ``parse_entry`` reads an entry's text into a ``Pattern``,
or refuses it with a ``TablError`` saying why (the rules are in ``tenant_list``'s notes)."""

from __future__ import annotations

import ipaddress
import re

import tldextract

from shared.urllists.tenant_list import MAX_ENTRY_LENGTH, TablAction, TablError
from shared.urllists.tenant_list_pattern import HostMode, PathMode, Pattern, TokenMode
from shared.urls.domains import suffix_parts

__all__ = ["parse_entry"]

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")
_HAS_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_BAD_CHARS = frozenset("'\"#\\<>^`{|}")


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
    if left_wild and path_mode is PathMode.BELOW and path == "/" and _is_public_suffix(host):
        if action is TablAction.ALLOW:
            raise TablError(f"{entry!r}: a whole top-level domain can only be blocked")
        return Pattern(
            f"*.{host}/*", action, host, HostMode.SELF_OR_SUB, PathMode.ANY, "", TokenMode.NONE, False
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
        + (path + ("*" if path_mode is PathMode.BELOW else ""))
        + ("~" if right_tilde else "")
    )
    if left_tilde:
        if right_tilde:
            return Pattern(
                normal, action, host, HostMode.SELF_OR_SUB, PathMode.ANY, "", TokenMode.AFTER_SLASH, False
            )
        return Pattern(normal, action, host, HostMode.SELF_OR_SUB, PathMode.EMPTY, "", TokenMode.NONE, False)
    host_mode = HostMode.STRICT_SUB if left_wild else HostMode.EXACT
    token_mode = TokenMode.NONE
    if action is TablAction.BLOCK and not left_wild:
        if path_mode is PathMode.EMPTY:
            host_mode, path_mode, token_mode = HostMode.SELF_OR_SUB, PathMode.ANY, TokenMode.ANYWHERE
        elif path_mode is PathMode.EXACT:
            host_mode, path_mode = HostMode.SELF_OR_SUB, PathMode.SUBTREE
    return Pattern(normal, action, host, host_mode, path_mode, path, token_mode, False)


def _is_public_suffix(host: str) -> bool:
    parsed = suffix_parts(host)
    return bool(parsed.suffix) and not parsed.domain and not parsed.subdomain


def _parse_path(path: str, entry: str) -> tuple[PathMode, str]:
    if not path:
        return PathMode.EMPTY, ""
    if "*" not in path:
        return PathMode.EXACT, path.lower()
    if not path.endswith("*"):
        raise TablError(f"{entry!r}: middle wildcards aren't allowed")
    if not path.endswith("/*"):
        raise TablError(f"{entry!r}: a right wildcard must follow '/'")
    return PathMode.BELOW, path[:-1].lower()


def _ip_pattern(
    entry: str, ip: str, host: str, path: str, action: TablAction, tilde: bool
) -> Pattern:
    if "*" in host:
        raise TablError(f"{entry!r}: wildcards aren't allowed in IP addresses")
    if tilde:
        raise TablError(f"{entry!r}: '~' isn't allowed with IP addresses")
    path_mode, path = _parse_path(path, entry)
    shown = f"[{ip}]" if ":" in ip and path_mode is not PathMode.EMPTY else ip
    normal = shown + path + ("*" if path_mode is PathMode.BELOW else "")
    return Pattern(normal, action, ip, HostMode.EXACT, path_mode, path, TokenMode.NONE, True)
