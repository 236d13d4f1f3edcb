"""Safe Browsing lookup expressions: host suffixes by path prefixes of a canonical URL.

Verdict and feed entries are stored as one expression each (``expression_of``); a URL matches
an entry when the entry is one of the URL's expressions (``expressions``). That gives the
coverage rules of the design without any other index: an entry whose path is ``/`` covers the
host, its subdomains and every path; one ending in ``/`` covers that path and everything under
it; any other covers that path, and with a query only that query.
"""

from __future__ import annotations

import re

from shared.urls.canonical import CanonicalURL, canonical_parts
from shared.urls.weburl import WebURL

MAX_HOST_SUFFIXES = 4  # besides the exact host
HOST_SUFFIX_SOURCE_LABELS = 5
MAX_PATH_PREFIXES = 4  # "/", "/a/", "/a/b/", "/a/b/c/"

_CANONICAL_IPV4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")


def expressions(url: str | WebURL) -> list[str]:
    """Every lookup expression of ``url`` (at most 30), most specific host first.

    Raises ``InvalidURL`` when ``url`` has no canonical form.
    """
    return lookup_expressions(canonical_parts(url))


def lookup_expressions(parts: CanonicalURL) -> list[str]:
    """The lookup expressions of an already canonical URL (at most 30), most specific host first."""
    paths = _lookup_paths(parts)
    return [host + path for host in _lookup_hosts(parts.host) for path in paths]


def expression_of(entry: str) -> str:
    """The one expression a feed or verdict entry (URL, bare domain, ``host/path``) stands for."""
    parts = canonical_parts(entry)
    if parts.query:
        return f"{parts.host}{parts.path}?{parts.query}"
    return parts.host + parts.path


def covers(entry_expr: str, url: str) -> bool:
    """Whether the entry ``entry_expr`` matches ``url`` under the Safe Browsing rules."""
    return expression_of(entry_expr) in expressions(url)


def _lookup_hosts(host: str) -> list[str]:
    if host.startswith("[") or _CANONICAL_IPV4.fullmatch(host):
        return [host]
    labels = host.split(".")
    source = labels[-HOST_SUFFIX_SOURCE_LABELS:]
    # The exact host is listed first; when it is one of the last five labels' suffixes it is
    # not repeated. A suffix of one label (the TLD) is never looked up.
    first = 0 if len(labels) > HOST_SUFFIX_SOURCE_LABELS else 1
    return [host] + [".".join(source[i:]) for i in range(first, len(source) - 1)]


def _lookup_paths(parts: CanonicalURL) -> list[str]:
    path = parts.path
    found = [f"{path}?{parts.query}", path] if parts.query else [path]
    prefix = "/"
    if prefix != path:
        found.append(prefix)
    for segment in path.split("/")[1:-1][: MAX_PATH_PREFIXES - 1]:
        prefix = f"{prefix}{segment}/"
        if prefix != path:
            found.append(prefix)
    return found
