"""Download a feed, or read it from disk, revalidating with ETag / If-Modified-Since.

A conditional request answered 304 costs the feed server nothing and us no parsing; the
caller keeps its current index. Size is bounded while reading, so an endless or oversized
body fails with `FeedFetchError` instead of filling memory.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import aiohttp

from shared.feeds.errors import FeedFetchError
from shared.netguard import NetguardError, guarded_session
from shared.redaction import redact_text, redact_url

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_TIMEOUT = 300.0
_CHUNK = 1 << 16
_FILE_CHUNK = 1 << 20
USER_AGENT = "teams-safelinks feed fetcher"

Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class FetchResult:
    """What a fetch brought: a body, or word that the copy we hold is still current."""

    not_modified: bool
    data: bytes | None
    etag: str | None
    last_modified: str | None
    status: int


async def fetch_feed(
    source: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    session: aiohttp.ClientSession | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Progress | None = None,
    allow_private: bool = False,
) -> FetchResult:
    """Fetch `source` (an http(s) URL, a file:// URL or a path) unless it is unchanged.

    Without `session` a guarded one is made (see `shared.netguard`); `allow_private`
    lets it reach an internal mirror. Raises `FeedFetchError` for any failure.
    """
    if source.startswith(("http://", "https://")):
        return await _fetch_http(
            source, etag, last_modified, session, max_bytes, timeout, progress, allow_private
        )
    if "://" in source and not source.startswith("file://"):
        raise FeedFetchError(f"unsupported feed source scheme: {source.split('://', 1)[0]}")
    path = Path(source.removeprefix("file://"))
    return await _read_file(path, etag, last_modified, max_bytes, progress)


async def _fetch_http(
    url: str,
    etag: str | None,
    last_modified: str | None,
    session: aiohttp.ClientSession | None,
    max_bytes: int,
    timeout: float,
    progress: Progress | None,
    allow_private: bool,
) -> FetchResult:
    headers = {"User-Agent": USER_AGENT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    own = session is None
    active = session or guarded_session(allow_private=allow_private)
    try:
        async with active.get(
            url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            new_etag = resp.headers.get("ETag")
            new_modified = resp.headers.get("Last-Modified")
            if resp.status == 304:
                return FetchResult(
                    True, None, new_etag or etag, new_modified or last_modified, 304
                )
            if not 200 <= resp.status < 300:
                raise FeedFetchError(f"{redact_url(url)}: HTTP {resp.status} {resp.reason or ''}".rstrip())
            total = resp.content_length
            if total is not None and total > max_bytes:
                raise FeedFetchError(f"{redact_url(url)}: body of {total} bytes exceeds {max_bytes}")
            data = await _read_bounded(resp, url, total, max_bytes, progress)
            return FetchResult(False, data, new_etag, new_modified, resp.status)
    except (aiohttp.ClientError, NetguardError) as exc:
        raise FeedFetchError(redact_text(f"{redact_url(url)}: {exc}")) from exc
    except TimeoutError as exc:
        raise FeedFetchError(f"{redact_url(url)}: timed out after {timeout:g} s") from exc
    finally:
        if own:
            await active.close()


async def _read_bounded(
    resp: aiohttp.ClientResponse,
    url: str,
    total: int | None,
    max_bytes: int,
    progress: Progress | None,
) -> bytes:
    buf = bytearray()
    async for chunk in resp.content.iter_chunked(_CHUNK):
        buf += chunk
        if len(buf) > max_bytes:
            raise FeedFetchError(f"{redact_url(url)}: body exceeds {max_bytes} bytes")
        if progress is not None:
            progress(len(buf), total)
    return bytes(buf)


def _file_validators(stat: os.stat_result) -> tuple[str, str]:
    """An ETag from size and mtime and an HTTP date, so files revalidate like URLs."""
    etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
    modified = format_datetime(datetime.fromtimestamp(stat.st_mtime, UTC), usegmt=True)
    return etag, modified


def _unchanged(stat: os.stat_result, etag: str | None, last_modified: str | None) -> bool:
    current_etag, _ = _file_validators(stat)
    if etag is not None:
        return etag == current_etag
    if last_modified is not None:
        try:
            since = parsedate_to_datetime(last_modified)
        except (TypeError, ValueError):
            return False
        return int(stat.st_mtime) <= since.timestamp()
    return False


async def _read_file(
    path: Path,
    etag: str | None,
    last_modified: str | None,
    max_bytes: int,
    progress: Progress | None,
) -> FetchResult:
    try:
        handle = await asyncio.to_thread(path.open, "rb")
    except OSError as exc:
        raise FeedFetchError(f"{path}: {exc.strerror or exc}") from exc
    with handle:
        stat = os.fstat(handle.fileno())
        new_etag, new_modified = _file_validators(stat)
        if _unchanged(stat, etag, last_modified):
            return FetchResult(True, None, new_etag, new_modified, 304)
        if stat.st_size > max_bytes:
            raise FeedFetchError(f"{path}: {stat.st_size} bytes exceeds {max_bytes}")
        buf = bytearray()
        while chunk := await asyncio.to_thread(handle.read, _FILE_CHUNK):
            buf += chunk
            if len(buf) > max_bytes:
                raise FeedFetchError(f"{path}: grew past {max_bytes} bytes while read")
            if progress is not None:
                progress(len(buf), stat.st_size)
    return FetchResult(False, bytes(buf), new_etag, new_modified, 200)
