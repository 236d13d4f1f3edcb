"""The Graph client's app-only token: client credentials with a secret or a certificate, cached until expiry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from shared.graph import ClientCredentials, GraphClient, GraphError, GraphRefused, MessageRef, scope_for
from shared.graph.token import Certificate
from tests.graph_standin import CLIENT_ID, CLIENT_SECRET, GraphStandIn, graph_standin


@pytest.fixture
async def graph() -> AsyncIterator[GraphStandIn]:
    async with graph_standin() as standin:
        yield standin


def credentials(graph: GraphStandIn, **options: object) -> ClientCredentials:
    values: dict[str, object] = {"scope": scope_for(graph.graph_url), "secret": CLIENT_SECRET, **options}
    return ClientCredentials(graph.token_url, str(values.pop("client_id", CLIENT_ID)), **values)  # type: ignore[arg-type]


def pem_pair(path: Path) -> x509.Certificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "safelinks-graph")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM))
    return cert


@pytest.mark.parametrize(("base", "scope"), [
    ("https://graph.microsoft.com/v1.0", "https://graph.microsoft.com/.default"),
    ("https://graph.microsoft.us/v1.0", "https://graph.microsoft.us/.default"),
    ("http://127.0.0.1:8080/v1.0", "http://127.0.0.1:8080/.default"),
])
def test_scope_is_the_graph_origin(base: str, scope: str) -> None:
    """The token's scope is the configured Graph's origin with /.default (sovereign clouds follow the URL)."""
    assert scope_for(base) == scope


async def test_token_is_kept_until_near_expiry(graph: GraphStandIn) -> None:
    """One token request serves many calls; a token within five minutes of expiry is fetched again."""
    creds = credentials(graph)
    async with aiohttp.ClientSession() as session:
        first = await creds.token(session)
        assert await creds.token(session) == first
        assert len(graph.token_requests) == 1
        graph.token_lifetime = 200  # shorter than the safety margin: never reused
        creds.forget()
        short = await creds.token(session)
        assert await creds.token(session) != short
        assert len(graph.token_requests) == 3
        assert graph.token_requests[0]["scope"] == graph.url + "/.default"


async def test_wrong_secret_is_refused_for_good(graph: GraphStandIn) -> None:
    """The token endpoint's 401 is a refusal (not retried forever as an outage) and names the error."""
    async with aiohttp.ClientSession() as session:
        with pytest.raises(GraphRefused, match="invalid_client"):
            await credentials(graph, secret="wrong").token(session)
        with pytest.raises(GraphRefused, match="no Graph credentials"):
            await credentials(graph, secret="").token(session)


async def test_certificate_assertion_is_accepted(graph: GraphStandIn, tmp_path: Path) -> None:
    """With a certificate the client sends an RS256 assertion with the x5t thumbprint; another key is refused."""
    good, other = tmp_path / "good.pem", tmp_path / "other.pem"
    graph.certificate = pem_pair(good)
    pem_pair(other)
    async with aiohttp.ClientSession() as session:
        assert await credentials(graph, secret="", certificate=Certificate.load(good)).token(session)
        assert "client_secret" not in graph.token_requests[-1]
        with pytest.raises(GraphRefused):
            await credentials(graph, secret="", certificate=Certificate.load(other)).token(session)
    (tmp_path / "bad.pem").write_text("not a pem", encoding="utf-8")
    with pytest.raises(GraphError, match="private key"):
        Certificate.load(tmp_path / "bad.pem")


async def test_graph_answers_map_to_retry_or_refusal(graph: GraphStandIn) -> None:
    """Graph's 429 and 5xx are worth retrying (with Retry-After); 404 is a refusal naming Graph's code."""
    from shared.graph import GraphUnavailable

    path = "/chats/19:x@thread.v2/messages/1"
    graph.add_message(path)
    client = GraphClient(graph.graph_url, credentials(graph), model="A")
    try:
        graph.fail_next(429, retry_after="7")
        with pytest.raises(GraphUnavailable) as throttled:
            await client.set_policy_violation(MessageRef("1", chat_id="19:x@thread.v2"), {"policyViolation": {}})
        assert throttled.value.retry_after == 7 and throttled.value.status == 429
        with pytest.raises(GraphRefused, match="404 NotFound"):
            await client.set_policy_violation(MessageRef("2", chat_id="19:x@thread.v2"), {"policyViolation": {}})
        answer = await client.set_policy_violation(MessageRef("1", chat_id="19:x@thread.v2"),
                                                   {"policyViolation": {"dlpAction": "None"}})
        assert answer["policyViolation"] == {"dlpAction": "None"}
        assert graph.patches()[-1].query == {"model": "A"}
    finally:
        await client.close()


@pytest.mark.parametrize(("overrides", "missing"), [
    ({}, ["client id", "secret or certificate", "tenant"]),
    ({"microsoft_app_id": "a", "microsoft_app_password": "p", "microsoft_app_tenant_id": "t"}, []),
    ({"graph_client_id": "a", "graph_client_certificate": "/x.pem", "graph_token_url": "http://127.0.0.1:1/t"}, []),
    ({"graph_client_id": "a", "graph_client_secret": "s"}, ["tenant"]),
])
def test_graph_credentials_default_to_the_bot_and_gaps_are_named(
        make_settings: Any, overrides: dict[str, str], missing: list[str]) -> None:
    """Graph credentials fall back to the bot's MicrosoftApp* values; what is still missing is named."""
    from safelinks.quarantine import graph_problems

    problems = graph_problems(make_settings(**overrides))
    assert [next(m for m in missing if m in p) for p in problems] == missing
