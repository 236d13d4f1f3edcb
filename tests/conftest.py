"""Shared fixtures: settings in a temporary data directory, and the running application."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings, load_settings

BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0"
)
TEST_KEYS = "k1:" + "11" * 32 + ",k0:" + "22" * 32


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """A command run in-process (``serve`` configures logging) leaves no handler behind on a stream the next
    test no longer captures."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def make_settings(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[..., Settings]:
    # A test (or a module, by ``pytestmark``) that uses ``both_backends`` gets its store on each backend in turn.
    store = {}
    if "both_backends" in request.fixturenames:
        store["database_url"] = request.getfixturevalue("both_backends")

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "var",
            "signing_keys": TEST_KEYS,
            "signing_key_id": "k1",
            "public_url": "http://127.0.0.1:3978",
            **store,
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


# --- Both store backends -------------------------------------------------------------------------
# Tests that take ``db_url`` run once on SQLite and once on PostgreSQL. PostgreSQL is the server at
# 127.0.0.1:5432 (trust auth, database ``test``; SAFELINKS_TEST_POSTGRES overrides the base URL); each
# test gets a schema of its own, named in the URL's ``search_path``, dropped afterwards.

PG_CANDIDATES = ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://root@127.0.0.1:5432/test")


def _in_thread(work: Callable[[], Any]) -> Any:
    # asyncio.run in a thread of its own: the test's event loop is left alone.
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(work())).result()


def _probe_postgres() -> tuple[str | None, str]:
    import os

    import asyncpg

    candidates = [os.environ["SAFELINKS_TEST_POSTGRES"]] if os.environ.get("SAFELINKS_TEST_POSTGRES") else PG_CANDIDATES
    problems = []
    for url in candidates:
        async def probe(url: str = url) -> None:
            conn = await asyncpg.connect(url, timeout=3)
            await conn.close()

        try:
            _in_thread(probe)
            return url, ""
        except Exception as exc:  # any failure means "not usable here": the tests skip, saying why
            problems.append(f"{url}: {type(exc).__name__}: {exc}")
    return None, "PostgreSQL is not reachable (" + "; ".join(problems) + ")"


@pytest.fixture(scope="session")
def postgres_base_url() -> str:
    """The base URL of a reachable PostgreSQL, or a skip saying why there is none."""
    url, why = _probe_postgres()
    if url is None:
        pytest.skip(why)
    return url


@pytest.fixture
def pg_schemas(request: pytest.FixtureRequest) -> Any:
    """Make PostgreSQL URLs whose ``search_path`` is a fresh schema (a name may be asked for); all are dropped
    after the test."""
    import uuid
    from urllib.parse import quote

    import asyncpg

    base = request.getfixturevalue("postgres_base_url")
    made: list[str] = []

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(base, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def ident(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def make(name: str | None = None) -> str:
        schema = name or f"t_{uuid.uuid4().hex[:16]}"
        _in_thread(lambda: run(f"CREATE SCHEMA {ident(schema)}"))
        made.append(schema)
        return f"{base}?search_path={quote(ident(schema) if name else schema)}"

    yield make
    # A connection a failed test left open must not hang the run: give up on the drop after a while.
    for schema in made:
        drop = f"SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {ident(schema)} CASCADE"
        _in_thread(lambda drop=drop: run(drop))


@pytest.fixture
def pg_url(pg_schemas: Callable[[], str]) -> str:
    """A PostgreSQL URL whose ``search_path`` is a fresh schema, dropped after the test."""
    return pg_schemas()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for each backend: a SQLite file in the test's directory, or a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db.sqlite'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def both_backends(db_url: str) -> str:
    """The store of ``make_settings`` on SQLite, then on PostgreSQL: for tests that go through the store, by
    ``@pytest.mark.usefixtures("both_backends")`` (or a module's ``pytestmark``)."""
    return db_url


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the ``safelinks`` command in-process: (exit code, stdout, stderr)."""
    from safelinks.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err
