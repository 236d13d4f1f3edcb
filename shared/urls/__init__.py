"""URLs: extraction from messages, Safe Browsing canonical form and expressions, unwrapping."""

from shared.urls.canonical import canonicalize
from shared.urls.domains import is_ip, registrable_domain
from shared.urls.errors import InvalidURL, URLError
from shared.urls.expressions import covers, expression_of, expressions
from shared.urls.extract import extract_urls
from shared.urls.unwrap import unwrap

__all__ = [
    "InvalidURL",
    "URLError",
    "canonicalize",
    "covers",
    "expression_of",
    "expressions",
    "extract_urls",
    "is_ip",
    "registrable_domain",
    "unwrap",
]
