"""Feed fetching with revalidation against a real loopback server, and the on-disk cache."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from shared.feeds import FeedFetchError, FeedFormat, FeedFormatError, parse_feed
from shared.feeds.cache import FeedCache
from shared.feeds.errors import FeedCacheError
from shared.feeds.fetch import fetch_feed

DATA = Path(__file__).parent / "data" / "feeds"
BODY = (DATA / "urlhaus.csv").read_bytes()
ETAG = '"urlhaus-v1"'
MODIFIED = "Sat, 29 Nov 2026 12:00:00 GMT"


@dataclass
class FeedServer:
    base: str
    seen: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    """A feed server on 127.0.0.1 honouring If-None-Match / If-Modified-Since."""
    state = FeedServer("")

    async def feed(request: web.Request) -> web.Response:
        state.seen.append(dict(request.headers))
        if request.headers.get("If-None-Match") == ETAG or (
            request.headers.get("If-Modified-Since") == MODIFIED
        ):
            return web.Response(status=304, headers={"ETag": ETAG})
        return web.Response(body=BODY, headers={"ETag": ETAG, "Last-Modified": MODIFIED})

    async def gzipped(request: web.Request) -> web.Response:
        resp = web.Response(body=BODY)
        resp.enable_compression()
        return resp

    async def big(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()  # no Content-Length: the limit must hold while reading
        await resp.prepare(request)
        for _ in range(64):
            await resp.write(b"x" * 4096)
        await resp.write_eof()
        return resp

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404, text="not here")

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=503, text="<html>down</html>")

    app = web.Application()
    app.router.add_get("/feed.csv", feed)
    app.router.add_get("/gzip.csv", gzipped)
    app.router.add_get("/big", big)
    app.router.add_get("/missing", missing)
    app.router.add_get("/broken", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.base = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_first_fetch_returns_body_and_validators(
    server: FeedServer, session: aiohttp.ClientSession
) -> None:
    """An unconditional fetch returns the body with its ETag and Last-Modified."""
    result = await fetch_feed(f"{server.base}/feed.csv", session=session, timeout=5)
    assert (result.not_modified, result.data, result.status) == (False, BODY, 200)
    assert (result.etag, result.last_modified) == (ETAG, MODIFIED)
    assert "If-None-Match" not in server.seen[0]


@pytest.mark.parametrize(
    ("etag", "modified", "header"),
    [(ETAG, None, "If-None-Match"), (None, MODIFIED, "If-Modified-Since")],
)
async def test_revalidation_yields_not_modified(
    server: FeedServer,
    session: aiohttp.ClientSession,
    etag: str | None,
    modified: str | None,
    header: str,
) -> None:
    """Sending the stored validator gets a 304 and no body."""
    result = await fetch_feed(
        f"{server.base}/feed.csv", etag=etag, last_modified=modified, session=session, timeout=5
    )
    assert result.not_modified and result.data is None and result.status == 304
    assert result.etag == ETAG
    assert header in server.seen[0]


async def test_stale_validator_gets_new_body(
    server: FeedServer, session: aiohttp.ClientSession
) -> None:
    """A validator that no longer matches brings the full body."""
    result = await fetch_feed(
        f"{server.base}/feed.csv", etag='"old"', session=session, timeout=5
    )
    assert result.data == BODY


async def test_gzip_transfer_encoding_is_decoded(
    server: FeedServer, session: aiohttp.ClientSession
) -> None:
    """A gzip Content-Encoding arrives decoded."""
    result = await fetch_feed(f"{server.base}/gzip.csv", session=session, timeout=5)
    assert result.data == BODY


async def test_progress_reports_bytes(server: FeedServer, session: aiohttp.ClientSession) -> None:
    """The progress callback sees the byte count grow up to the whole body."""
    calls: list[tuple[int, int | None]] = []
    await fetch_feed(
        f"{server.base}/feed.csv", session=session, timeout=5,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls[-1] == (len(BODY), len(BODY))


@pytest.mark.parametrize(
    ("path", "max_bytes", "message"),
    [
        ("/missing", 1 << 20, "HTTP 404"),
        ("/broken", 1 << 20, "HTTP 503"),
        ("/big", 100_000, "exceeds 100000"),
        ("/feed.csv", 100, "exceeds 100"),
    ],
)
async def test_http_failures_raise(
    server: FeedServer, session: aiohttp.ClientSession, path: str, max_bytes: int, message: str
) -> None:
    """Non-2xx answers and oversized bodies raise FeedFetchError."""
    with pytest.raises(FeedFetchError, match=message):
        await fetch_feed(f"{server.base}{path}", session=session, max_bytes=max_bytes, timeout=5)


async def test_connection_refused_raises(session: aiohttp.ClientSession) -> None:
    """A server that is not there is a FeedFetchError, not an aiohttp exception."""
    with pytest.raises(FeedFetchError):
        await fetch_feed("http://127.0.0.1:9/feed", session=session, timeout=5)


async def test_default_session_refuses_loopback(server: FeedServer) -> None:
    """Without a session the fetch is SSRF-guarded; allow_private opens it for mirrors."""
    with pytest.raises(FeedFetchError, match="loopback"):
        await fetch_feed(f"{server.base}/feed.csv", timeout=5)
    result = await fetch_feed(f"{server.base}/feed.csv", timeout=5, allow_private=True)
    assert result.data == BODY


async def test_file_source_revalidates(tmp_path: Path) -> None:
    """A file source returns its body, then 304 while size and mtime are unchanged."""
    path = tmp_path / "list.txt"
    path.write_bytes(b"evil.example\n")
    first = await fetch_feed(str(path), timeout=5)
    assert first.data == b"evil.example\n" and first.etag
    again = await fetch_feed(f"file://{path}", etag=first.etag, timeout=5)
    assert again.not_modified
    by_date = await fetch_feed(str(path), last_modified=first.last_modified, timeout=5)
    assert by_date.not_modified
    path.write_bytes(b"evil.example\nbad.test\n")
    os.utime(path, ns=(0, 10**18))
    changed = await fetch_feed(str(path), etag=first.etag, timeout=5)
    assert changed.data == b"evil.example\nbad.test\n"


@pytest.mark.parametrize(
    ("source", "message"),
    [("/nonexistent/feed.txt", "No such file"), ("ftp://feeds.example/x", "unsupported")],
)
async def test_bad_sources_raise(source: str, message: str) -> None:
    """Missing files and unknown schemes raise FeedFetchError."""
    with pytest.raises(FeedFetchError, match=message):
        await fetch_feed(source, timeout=5)


async def test_oversized_file_raises(tmp_path: Path) -> None:
    """A file above max_bytes is refused before it is read."""
    path = tmp_path / "big.txt"
    path.write_bytes(b"a" * 1000)
    with pytest.raises(FeedFetchError, match="exceeds"):
        await fetch_feed(str(path), max_bytes=999, timeout=5)


def test_cache_round_trip(tmp_path: Path) -> None:
    """A stored copy loads back with its validators, counts and checksum."""
    cache = FeedCache(tmp_path / "feeds")
    assert cache.load("urlhaus") is None
    parsed = parse_feed(BODY, FeedFormat.URLHAUS_CSV)
    meta = cache.store(
        "urlhaus", BODY, etag=ETAG, last_modified=MODIFIED,
        entries=len(parsed.entries), bad_lines=parsed.bad_lines,
    )
    loaded = cache.load("urlhaus")
    assert loaded is not None
    assert loaded.data == BODY and loaded.meta == meta
    assert meta.sha256 == hashlib.sha256(BODY).hexdigest()
    assert (meta.entries, meta.bad_lines) == (4, 1)
    assert sorted(p.name for p in (tmp_path / "feeds").iterdir()) == [
        "urlhaus.data", "urlhaus.meta.json",
    ]


def test_cache_replace_keeps_no_temp_files(tmp_path: Path) -> None:
    """Replacing a copy leaves exactly the two files, holding the new body."""
    cache = FeedCache(tmp_path)
    cache.store("f", b"one\n", etag="1", last_modified=None, entries=1, bad_lines=0)
    cache.store("f", b"two\n", etag="2", last_modified=None, entries=1, bad_lines=0)
    loaded = cache.load("f")
    assert loaded is not None and loaded.data == b"two\n" and loaded.meta.etag == "2"
    assert len(list(tmp_path.iterdir())) == 2


def test_cache_detects_data_meta_mismatch(tmp_path: Path) -> None:
    """Data newer than its metadata keeps the body but drops validators."""
    cache = FeedCache(tmp_path)
    cache.store("f", b"one\n", etag="1", last_modified="x", entries=1, bad_lines=0)
    (tmp_path / "f.data").write_bytes(b"two\n")
    loaded = cache.load("f")
    assert loaded is not None and loaded.data == b"two\n"
    assert (loaded.meta.etag, loaded.meta.last_modified) == (None, None)


def test_cache_survives_damaged_meta(tmp_path: Path) -> None:
    """Unreadable metadata leaves the body usable, with no validators."""
    cache = FeedCache(tmp_path)
    cache.store("f", b"one\n", etag="1", last_modified=None, entries=1, bad_lines=0)
    (tmp_path / "f.meta.json").write_text("{not json")
    loaded = cache.load("f")
    assert loaded is not None and loaded.meta.etag is None
    assert cache.meta("f") is None


def test_cache_touch_updates_fetched_at(tmp_path: Path) -> None:
    """A 304 revalidation refreshes fetched_at without touching the body."""
    cache = FeedCache(tmp_path)
    first = cache.store("f", b"one\n", etag="1", last_modified=None, entries=1, bad_lines=0)
    touched = cache.touch("f")
    assert touched is not None and touched.fetched_at >= first.fetched_at
    assert json.loads((tmp_path / "f.meta.json").read_text())["etag"] == "1"
    assert cache.touch("absent") is None


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".hidden", "x" * 101, "a..b"])
def test_cache_refuses_unsafe_names(tmp_path: Path, name: str) -> None:
    """Feed names that could leave the directory raise FeedCacheError."""
    with pytest.raises(FeedCacheError):
        FeedCache(tmp_path).load(name)


async def test_broken_download_never_replaces_good_copy(
    server: FeedServer, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Fetch, parse, store: a truncated body fails parsing and the old copy stays."""
    cache = FeedCache(tmp_path)
    good = await fetch_feed(f"{server.base}/feed.csv", session=session, timeout=5)
    assert good.data is not None
    parsed = parse_feed(good.data, FeedFormat.URLHAUS_CSV)
    cache.store("u", good.data, etag=good.etag, last_modified=good.last_modified,
                entries=len(parsed.entries), bad_lines=parsed.bad_lines)
    with pytest.raises(FeedFormatError):
        parse_feed(good.data[:-40], FeedFormat.URLHAUS_CSV)
    loaded = cache.load("u")
    assert loaded is not None and loaded.data == BODY
