"""Threat feeds: parsing the published layouts, fetching with revalidation, the last good copy."""

from shared.feeds.cache import CachedFeed, CacheMeta, FeedCache
from shared.feeds.errors import FeedCacheError, FeedError, FeedFetchError, FeedFormatError
from shared.feeds.fetch import FetchResult, fetch_feed
from shared.feeds.formats import FeedEntry, FeedFormat, ParseResult, parse_feed

__all__ = [
    "CacheMeta",
    "CachedFeed",
    "FeedCache",
    "FeedCacheError",
    "FeedEntry",
    "FeedError",
    "FeedFetchError",
    "FeedFormat",
    "FeedFormatError",
    "FetchResult",
    "ParseResult",
    "fetch_feed",
    "parse_feed",
]
