"""Threat feeds: parsing the published layouts, fetching with revalidation, the last good copy."""

from shared.feeds.errors import FeedCacheError, FeedError, FeedFetchError, FeedFormatError
from shared.feeds.formats import FeedEntry, FeedFormat, ParseResult, parse_feed

__all__ = [
    "FeedCacheError",
    "FeedEntry",
    "FeedError",
    "FeedFetchError",
    "FeedFormat",
    "FeedFormatError",
    "ParseResult",
    "parse_feed",
]
