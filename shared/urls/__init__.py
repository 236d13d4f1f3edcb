"""URLs: the one parsed URL value, extraction from messages, Safe Browsing canonical form, unwrapping."""

from shared.urls.canonical import CanonicalURL, canonical_host, canonical_parts, canonicalize
from shared.urls.domains import is_ip, registrable_domain
from shared.urls.errors import InvalidURL, NotWebURL, URLError
from shared.urls.expressions import covers, expression_of, expressions, lookup_expressions
from shared.urls.extract import extract_urls, href_target
from shared.urls.unwrap import unwrap
from shared.urls.weburl import HostKind, WebURL, base_url, display_host, parse, parse_typed

__all__ = [
    "CanonicalURL",
    "HostKind",
    "InvalidURL",
    "NotWebURL",
    "URLError",
    "WebURL",
    "base_url",
    "canonical_host",
    "canonical_parts",
    "canonicalize",
    "covers",
    "display_host",
    "expression_of",
    "expressions",
    "extract_urls",
    "href_target",
    "is_ip",
    "lookup_expressions",
    "parse",
    "parse_typed",
    "registrable_domain",
    "unwrap",
]
