"""Privacy and terms: the manifest's /privacy and /terms answer (built-in text, an organisation's file, or a
redirect), on every role, and the package ships the MIT licence it names."""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from safelinks.server import create_app
from shared.config import Settings
from shared.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def serve(make_settings: Callable[..., Settings]) -> AsyncIterator[Callable[..., Any]]:
    clients: list[TestClient] = []

    async def start(role: str = "all", **overrides: Any) -> TestClient:
        client = TestClient(TestServer(create_app(make_settings(role=role, **overrides)), host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


def test_manifest_points_at_the_served_paths() -> None:
    """The manifest's privacy and terms URLs are {public_url}/privacy and /terms, the paths served here."""
    template = (ROOT / "manifest" / "manifest.json.j2").read_text()
    assert '(public_url ~ "/privacy")' in template and '(public_url ~ "/terms")' in template


@pytest.mark.parametrize("role", ["all", "proxy", "bot", "worker"])
async def test_builtin_pages_answer_on_every_role(serve: Callable[..., Any], role: str) -> None:
    """/privacy and /terms answer 200 with the locked-down page headers on every role."""
    client = await serve(role)
    for path, title in (("/privacy", "Privacy statement"), ("/terms", "Terms of use")):
        r = await client.get(path)
        body = await r.text()
        assert r.status == 200 and title in body, path
        assert r.headers["Content-Type"].startswith("text/html") and "frame-ancestors 'none'" in r.headers[
            "Content-Security-Policy"]
    again = await client.get("/privacy")  # the prepared page is answered more than once
    assert again.status == 200


async def test_builtin_privacy_statement_states_this_deployments_retention(serve: Callable[..., Any]) -> None:
    """The built-in statement gives the retention periods and snippet length configured here."""
    client = await serve(click_retention_days=14, message_retention_days=9, alert_retention_days=120,
                         evidence_snippet_chars=80)
    body = await (await client.get("/privacy")).text()
    for fact in ("after 14 days", "after 9 days", "for 120 days", "first 80"):
        assert fact in " ".join(body.split()), fact


@pytest.mark.parametrize(("key", "path"), [("privacy_statement", "/privacy"), ("terms_of_use", "/terms")])
async def test_pages_redirect_where_configured(serve: Callable[..., Any], key: str, path: str) -> None:
    """An https URL configured for the page answers with a redirect to it."""
    client = await serve(**{key: "https://contoso.com/legal/safe-links"})
    r = await client.get(path, allow_redirects=False)
    assert r.status == 302 and r.headers["Location"] == "https://contoso.com/legal/safe-links"


async def test_pages_show_the_organisations_file_escaped(serve: Callable[..., Any], tmp_path: Path) -> None:
    """A text file configured for the page is shown paragraph by paragraph, escaped."""
    text = tmp_path / "privacy.txt"
    text.write_text("Contoso keeps clicks for 7 days.\n\nQuestions: <script>alert(1)</script> dpo@contoso.com\n")
    client = await serve(privacy_statement=str(text))
    body = await (await client.get("/privacy")).text()
    assert "<p>Contoso keeps clicks for 7 days.</p>" in body
    assert "<script>alert(1)" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_a_missing_page_file_is_a_configuration_error(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    """A page source that is neither a URL nor a readable file is refused at start, naming the setting."""
    with pytest.raises(ConfigError, match=r"SAFELINKS_TERMS_OF_USE: .*neither an http"):
        make_settings(terms_of_use=str(tmp_path / "missing.txt"))


def test_the_package_ships_the_mit_licence_it_names() -> None:
    """pyproject says MIT and LICENSE holds the MIT text."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "MIT"
    licence = (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in licence
