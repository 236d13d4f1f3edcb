"""The exceptions raised by feed parsing, fetching and caching.

Every failure of a feed update is a `FeedError`, so the updater can catch one type,
keep the last good copy and try again at the next interval.
"""

from __future__ import annotations

from shared.errors import SafeLinksError


class FeedError(SafeLinksError):
    """Base of every feed error."""


class FeedFormatError(FeedError):
    """The body is not a usable feed: truncated, malformed, empty, an error page or mostly bad."""


class FeedFetchError(FeedError):
    """The feed could not be downloaded or read: network, status, size or a missing file."""


class FeedCacheError(FeedError):
    """The on-disk copy of a feed could not be read or written, or its name is unsafe."""
