"""One Tenant Allow/Block List entry, parsed (``Pattern``), and how it matches a URL.

``tenant_list_syntax.parse_entry`` makes a pattern from an entry's text; the modes say what the
entry covers (the rules are in ``tenant_list``'s notes). A URL is cut once (``UrlView``) into what
matching needs, so the index tries many patterns against one parse.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from urllib.parse import unquote

from shared.urllists.tenant_list import MAX_ENTRY_LENGTH, TablAction, TablError
from shared.urls import URLError, WebURL, parse_typed

__all__ = ["HostMode", "PathMode", "Pattern", "TokenMode", "UrlView", "host_suffixes"]

# A host-like name inside a URL: used to find `contoso.com` in `test.com/q=contoso.com`. It starts
# only where a name can start and never gives characters back, so a scan is linear in the URL.
_NAME_TOKEN = re.compile(r"(?<![a-z0-9_-])[a-z0-9_-]++(?:\.[a-z0-9_-]++)++")


class HostMode(enum.Enum):
    """Which hosts an entry covers, by its anchor host."""

    EXACT = "exact"  # host == anchor
    STRICT_SUB = "strict-sub"  # host is a subdomain of anchor
    SELF_OR_SUB = "self-or-sub"  # host == anchor or a subdomain of it


class PathMode(enum.Enum):
    """Which paths (with the query) an entry covers."""

    EMPTY = "empty"  # no path, no query
    EXACT = "exact"  # rest == path
    SUBTREE = "subtree"  # rest == path, or below it
    BELOW = "below"  # rest starts with path (ending in '/') and is longer
    ANY = "any"


class TokenMode(enum.Enum):
    """Whether an entry's name also counts found elsewhere in the URL."""

    NONE = "none"
    ANYWHERE = "anywhere"  # the name anywhere in the URL, as a whole name
    AFTER_SLASH = "after-slash"  # the name right after a '/' in the path


def host_suffixes(host: str) -> list[str]:
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


class UrlView:
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
    host_mode: HostMode
    path_mode: PathMode
    path: str
    token_mode: TokenMode
    is_ip: bool

    def matches(self, url: str | WebURL) -> bool:
        """Whether this entry applies to `url` (a parsed URL, or text with or without a scheme)."""
        return self.matches_view(UrlView(url))

    def matches_view(self, view: UrlView) -> bool:
        """``matches`` for a URL already cut: the index cuts it once for all its candidates."""
        if self.action is TablAction.ALLOW and not view.default_port:
            return False
        if self._host_and_path_match(view, view.rest):
            return True
        if self.action is TablAction.BLOCK and view.decoded is not view.rest and self._host_and_path_match(
            view, view.decoded
        ):
            return True
        if self.token_mode is TokenMode.NONE:
            return False
        for name, after_slash in view.tokens():
            if self.token_mode is TokenMode.AFTER_SLASH and not after_slash:
                continue
            if name == self.anchor or name.endswith("." + self.anchor):
                return True
        return False

    def _host_and_path_match(self, view: UrlView, rest: str) -> bool:
        host, anchor = view.host, self.anchor
        if self.host_mode is HostMode.EXACT:
            if host != anchor:
                return False
        elif self.host_mode is HostMode.STRICT_SUB:
            if not host.endswith("." + anchor):
                return False
        elif host != anchor and not host.endswith("." + anchor):
            return False
        path = self.path
        match self.path_mode:
            case PathMode.EMPTY:
                return rest == ""
            case PathMode.EXACT:
                # An entry cannot hold a literal '*' (it is the wildcard): '%2A' stands for one.
                return rest == path or ("*" in rest and rest.replace("*", "%2a") == path)
            case PathMode.SUBTREE:
                return (
                    rest == path
                    or rest.startswith(path.rstrip("/") + "/")
                    or ("?" not in path and rest.startswith(path + "?"))
                )
            case PathMode.BELOW:
                return len(rest) > len(path) and rest.startswith(path)
            case PathMode.ANY:
                return True
        return False  # pragma: no cover - the match above is exhaustive
