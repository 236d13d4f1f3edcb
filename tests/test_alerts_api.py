"""The REST API over a real server: tokens, click ingestion, listings with filters and paging, PATCH."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from safelinks.server import create_app
from shared.config import Settings
from tests.conftest import FakeClock

TOKEN = "t0ken-for-tests-0123456789abcdefgh"
CONSOLE_TOKEN = "console-token-acting-for-analysts-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONSOLE = {"Authorization": f"Bearer {CONSOLE_TOKEN}"}


def _click(n: int, **extra: Any) -> dict[str, Any]:
    return {"Timestamp": "2026-11-01T11:59:00Z", "Url": f"https://login.contoso-phish.com/p/{n}",
            "ActionType": "ClickBlocked", "AccountUpn": f"user{n}@contoso.com", "Workload": "Email",
            "NetworkMessageId": f"nm-{n}", "ThreatTypes": "Phish", "IsClickedThrough": True,
            "ReportId": f"gw-{n}", **extra}


@pytest.fixture
async def client(make_settings: Callable[..., Settings], aiohttp_client: Any) -> TestClient:
    # On both backends for the tests marked so; request validation and auth are checked on SQLite alone.
    settings = make_settings(api_tokens=TOKEN, api_delegated_tokens=CONSOLE_TOKEN)
    return await aiohttp_client(create_app(settings, role="all", clock=FakeClock()))


async def _wait_alerts(client: TestClient, n: int) -> dict[str, Any]:
    for _ in range(100):
        async with client.get("/api/v1/alerts", headers=AUTH) as r:
            body = await r.json()
        if body["@odata.count"] >= n:
            return dict(body)
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {n} alerts, have {body['@odata.count']}")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN + "x"},
                                     {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"},
                                     {"Authorization": f"Bearer {TOKEN} {TOKEN}"}, {"Authorization": "Bearer tökén"}])
async def test_api_wants_a_token(client: TestClient, headers: dict[str, str]) -> None:
    """Without a valid token in the Bearer scheme (a bare token included) every API route answers 401."""
    for method, path in (("GET", "/api/v1/alerts"), ("GET", "/api/v1/incidents/1"), ("POST", "/api/v1/clicks")):
        async with client.request(method, path, headers=headers) as r:
            assert r.status == 401
            assert (await r.json())["error"]["code"] == "Unauthorized"


@pytest.mark.usefixtures("both_backends")
async def test_ingested_email_clicks_raise_alerts_listed_and_paged(client: TestClient) -> None:
    """Clicks posted by a gateway raise alerts; listings filter and page with @odata.nextLink."""
    async with client.post("/api/v1/clicks", json={"value": [_click(1), _click(2), _click(3)]}, headers=AUTH) as r:
        assert r.status == 202
        assert (await r.json())["accepted"] == 3
    async with client.post("/api/v1/clicks", json=_click(1), headers=AUTH) as r:
        assert (await r.json()) == {"accepted": 0, "duplicates": 1, "reportIds": []}
    body = await _wait_alerts(client, 3)
    assert {a["title"] for a in body["value"]} == {"A user clicked through to a potentially malicious URL"}
    assert {a["systemTags"][0] for a in body["value"]} == {"Email"}
    async with client.get("/api/v1/alerts", params={"$top": "2"}, headers=AUTH) as r:
        page = await r.json()
    assert len(page["value"]) == 2 and page["@odata.count"] == 3 and "@odata.nextLink" in page
    async with client.get(page["@odata.nextLink"].removeprefix("http://127.0.0.1:3978"), headers=AUTH) as r:
        rest = await r.json()
    assert len(rest["value"]) == 1
    for params, count in (({"severity": "high"}, 3), ({"severity": "low"}, 0), ({"status": "new"}, 3),
                          ({"status": "resolved"}, 0), ({"since": "1h"}, 3), ({"until": "2026-01-01T00:00:00Z"}, 0)):
        async with client.get("/api/v1/alerts", params=params, headers=AUTH) as r:
            assert (await r.json())["@odata.count"] == count, params


@pytest.mark.usefixtures("both_backends")
async def test_patch_alert_and_incident(client: TestClient) -> None:
    """PATCH changes status, classification and assignee; resolving an incident resolves its alerts."""
    async with client.post("/api/v1/clicks", json=[_click(1), _click(2, Url="https://login.contoso-phish.com/p/1")],
                           headers=AUTH) as r:
        assert r.status == 202
    body = await _wait_alerts(client, 2)
    alert_id = body["value"][0]["id"]
    change = {"status": "inProgress", "classification": "truePositive", "assignedTo": "soc@contoso.com",
              "comment": "looking"}
    headers = {**CONSOLE, "X-SafeLinks-User": "ana"}
    async with client.patch(f"/api/v1/alerts/{alert_id}", json=change, headers=headers) as r:
        alert = await r.json()
    assert (alert["status"], alert["classification"], alert["assignedTo"]) == ("inProgress", "truePositive",
                                                                               "soc@contoso.com")
    assert alert["comments"][0]["comment"] == "looking" and alert["comments"][0]["createdByDisplayName"] == "ana"
    incident_id = alert["incidentId"]
    async with client.patch(f"/api/v1/incidents/{incident_id}", json={"status": "resolved", "comment": "contained"},
                            headers=AUTH) as r:
        incident = await r.json()
    assert incident["status"] == "resolved" and incident["resolvingComment"] == "contained"
    assert {a["status"] for a in incident["alerts"]} == {"resolved"}
    async with client.get("/api/v1/incidents", params={"status": "resolved", "$expand": "alerts"}, headers=AUTH) as r:
        listed = await r.json()
    assert listed["@odata.count"] == 1 and len(listed["value"][0]["alerts"]) == 2


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("PATCH", "/api/v1/alerts/1", {"status": "done"}, 400, "unknown alert status 'done'"),
        ("PATCH", "/api/v1/alerts/1", {"severity": "low"}, 400, "cannot change severity"),
        ("PATCH", "/api/v1/alerts/999", {"status": "resolved"}, 404, "no alert 999"),
        ("GET", "/api/v1/incidents/abc", None, 404, "no such id"),
        ("POST", "/api/v1/clicks", {"Url": "https://a.contoso.com/"}, 400, "click #1: Timestamp is required"),
        ("POST", "/api/v1/clicks", [_click(1, ActionType="Clicked")], 400, "click #1: ActionType must be"),
        ("POST", "/api/v1/clicks", [_click(1), _click(2, Url="not a url")], 400, "click #2: Url"),
        ("POST", "/api/v1/clicks", [], 400, "no clicks in the request"),
        ("GET", "/api/v1/alerts?$top=x", None, 400, "$top must be a whole number"),
        ("GET", "/api/v1/alerts?since=yesterday", None, 400, "since: 'yesterday': use a number"),
    ],
)
@pytest.mark.usefixtures("both_backends")
async def test_bad_input_gets_a_clear_error(client: TestClient, method: str, path: str, body: Any, status: int,
                                            says: str) -> None:
    """Bad requests are answered 400/404 with a JSON error that says what is wrong."""
    if method == "PATCH" and status == 400:
        async with client.post("/api/v1/clicks", json=_click(1), headers=AUTH):
            pass
        await _wait_alerts(client, 1)
    async with client.request(method, path, json=body, headers=AUTH) as r:
        assert r.status == status
        assert says in (await r.json())["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path", "body", "says"),
    [
        ("GET", "/api/v1/alerts?$skip=100000000000000000000000", None, "$skip must be at most"),
        ("GET", "/api/v1/alerts?$top=100000000000000000000000", None, "$top must be at most"),
        ("GET", "/api/v1/alerts?$skip=%C2%B2", None, "$skip must be a whole number"),
        ("GET", "/api/v1/alerts?since=9999999999d", None, "since: duration '9999999999d' is longer"),
        ("GET", "/api/v1/incidents?until=99999999999999w", None, "until: duration"),
        ("GET", "/api/v1/alerts/123456789012345678901234567890", None, "id must be at most"),
        ("PATCH", "/api/v1/incidents/123456789012345678901234567890", {"status": "active"}, "id must be at most"),
        ("PATCH", "/api/v1/alerts/1", b"\xff\xfe{}", "not UTF-8"),
        ("PATCH", "/api/v1/alerts/1", b"[" * 100_000 + b"]" * 100_000, "nested deeper than 64"),
        ("PATCH", "/api/v1/alerts/1", b'{"comment": ' + b"[" * 70 + b"]" * 70 + b"}", "nested deeper than 64"),
        ("POST", "/api/v1/clicks", b"[" * 100_000 + b"]" * 100_000, "nested deeper than 64"),
        ("PATCH", "/api/v1/alerts/1", {"comment": "x" * 4001}, "comment is longer than 4000"),
        ("PATCH", "/api/v1/alerts/1", {"assignedTo": "a" * 257}, "assignedTo is longer than 256"),
        ("PATCH", "/api/v1/alerts/1", {"determination": "d" * 65}, "determination is longer than 64"),
        ("PATCH", "/api/v1/alerts/1", b'{"comment": "\\ud800"}', "unpaired UTF-16 surrogate"),
        ("POST", "/api/v1/clicks", b'{"Timestamp": "2026-11-01T00:00:00Z", "Url": "http://[::1/"}', "Url"),
        ("POST", "/api/v1/clicks", b'{"Timestamp": "9999-12-31T23:59:59-14:00", "Url": "https://a.contoso.com/"}',
         "Timestamp '9999-12-31T23:59:59-14:00' is out of range"),
    ],
)
async def test_out_of_range_and_hostile_input_is_400(client: TestClient, method: str, path: str, body: Any,
                                                     says: str) -> None:
    """Huge numbers, endless durations, non-UTF-8, deep nesting and over-long texts are 400 with the reason."""
    async with client.post("/api/v1/clicks", json=_click(1), headers=AUTH):
        pass
    await _wait_alerts(client, 1)
    kwargs: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
    async with client.request(method, path, headers={**AUTH, "Content-Type": "application/json"}, **kwargs) as r:
        assert r.status == 400, await r.text()
        assert says in (await r.json())["error"]["message"]


@pytest.mark.usefixtures("both_backends")
async def test_next_link_comes_from_the_public_url_not_the_host_header(client: TestClient) -> None:
    """@odata.nextLink is built on SAFELINKS_PUBLIC_URL; a forged Host header does not steer it."""
    async with client.post("/api/v1/clicks", json=[_click(1), _click(2)], headers=AUTH):
        pass
    await _wait_alerts(client, 2)
    async with client.get("/api/v1/alerts", params={"$top": "1"}, headers={**AUTH, "Host": "evil.example"}) as r:
        link = (await r.json())["@odata.nextLink"]
    assert link.startswith("http://127.0.0.1:3978/api/v1/alerts?"), link
    assert "%24skip=1" in link or "$skip=1" in link


@pytest.mark.usefixtures("both_backends")
async def test_only_delegated_tokens_name_the_actor(client: TestClient) -> None:
    """X-SafeLinks-User is refused (403) from a plain token and recorded from a delegated one."""
    async with client.post("/api/v1/clicks", json=_click(1), headers=AUTH):
        pass
    alert_id = (await _wait_alerts(client, 1))["value"][0]["id"]
    forged = {**AUTH, "X-SafeLinks-User": "the-ciso"}
    async with client.patch(f"/api/v1/alerts/{alert_id}", json={"comment": "closing"}, headers=forged) as r:
        assert r.status == 403
        assert "may not act for others" in (await r.json())["error"]["message"]
    async with client.patch(f"/api/v1/alerts/{alert_id}", json={"comment": "plain"}, headers=AUTH) as r:
        assert (await r.json())["comments"][-1]["createdByDisplayName"] == "api"
    acting = {**CONSOLE, "X-SafeLinks-User": "ana"}
    async with client.patch(f"/api/v1/alerts/{alert_id}", json={"comment": "mine"}, headers=acting) as r:
        assert (await r.json())["comments"][-1]["createdByDisplayName"] == "ana"


@pytest.mark.parametrize("tokens", ["short-token", "a" * 31, "ok-but-spaced " + "a" * 32])
def test_short_or_malformed_tokens_are_refused_at_start(make_settings: Callable[..., Settings], tokens: str) -> None:
    """API tokens need at least 32 printable characters without spaces; the error names the setting."""
    from shared.errors import ConfigError

    for setting in ("api_tokens", "api_delegated_tokens"):
        with pytest.raises(ConfigError, match=f"SAFELINKS_{setting.upper()}"):
            make_settings(**{setting: tokens})


async def test_undecodable_token_bytes_are_401(client: TestClient) -> None:
    """A token of raw non-UTF-8 bytes is refused like any wrong token (never a 500)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(b"GET /api/v1/alerts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe" + b"x" * 40
                 + b"\r\nConnection: close\r\n\r\n")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 401 ")
