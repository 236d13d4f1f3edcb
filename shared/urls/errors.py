"""Errors raised by the URL package."""

from __future__ import annotations

from shared.errors import SafeLinksError


class URLError(SafeLinksError, ValueError):
    """Base of every error raised by ``shared.urls``."""


class InvalidURL(URLError):
    """The text cannot be read as an http(s) URL with a host."""

    def __init__(self, url: str, reason: str) -> None:
        shown = url if len(url) <= 200 else url[:200] + "…"
        super().__init__(f"invalid URL {shown!r}: {reason}")
        self.url = url
        self.reason = reason


class NotWebURL(InvalidURL):
    """A URL a browser parses, with a scheme other than http or https."""
