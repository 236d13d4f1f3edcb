"""Notifications through the outbox: e-mail to a real SMTP server, signed webhooks to a real receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from shared.alerts.rules import load_rules
from shared.alerts.webhooks import EVENT_HEADER, SIGNATURE_HEADER, drop_stored_secrets, sign, verify_signature
from shared.config import Settings
from shared.store.alerts import AlertFilter
from tests.alerts_harness import alerting, click
from tests.conftest import FakeClock
from tests.smtp_server import smtp_server


def _rules(tmp_path: Path, notifications: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - id: teams-malicious-click\n    enabled: false\n"
        "  - id: clicked-through\n    notifications:\n" + notifications
    )
    return path


async def _drain(outbox: Any, clock: FakeClock, rounds: int = 6) -> None:
    for _ in range(rounds):
        await outbox.run_once()
        clock.now += timedelta(minutes=10)  # past any backoff


@pytest.mark.usefixtures("both_backends")
async def test_alert_email_reaches_the_smtp_server(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    """An alert's e-mail arrives at the SMTP server with text and HTML parts, to the rule's recipients."""
    with smtp_server() as (mailbox, port):
        settings = make_settings(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none",
                                 smtp_from="safelinks@contoso.com")
        rules = load_rules(_rules(tmp_path, "      email:\n        recipients: [soc@contoso.com, ir@contoso.com]\n"),
                           settings)
        clock = FakeClock()
        async with alerting(settings, clock, rules=rules) as (services, system):
            await services.clicks.record(click(clock.now, through=True))
            await system.engine.process_clicks()
            await _drain(system.outbox, clock)
    assert len(mailbox.messages) == 1
    message = mailbox.messages[0]
    assert sorted(mailbox.envelopes[0].rcpt_tos) == ["ir@contoso.com", "soc@contoso.com"]
    assert message["Subject"] == "[High] A user clicked through to a potentially malicious URL"
    types = {part.get_content_type() for part in message.walk()}
    assert {"text/plain", "text/html"} <= types
    text = next(p for p in message.walk() if p.get_content_type() == "text/plain").get_payload(decode=True)
    assert b"adele@contoso.com" in text and b"hxxps[:]//login[.]contoso-phish[.]com/signin" in text


@pytest.mark.usefixtures("both_backends")
async def test_daily_limit_holds_email_for_a_summary_and_says_so(make_settings: Callable[..., Settings],
                                                                 tmp_path: Path) -> None:
    """Past the rule's daily e-mail limit, alerts are still raised, say their e-mail was held, and arrive
    listed in one summary e-mail at the end of the window: never silence."""
    with smtp_server() as (mailbox, port):
        settings = make_settings(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none")
        rules = load_rules(_rules(tmp_path, "      email:\n        recipients: [soc@contoso.com]\n"
                                            "        daily_limit: 2\n"), settings)
        clock = FakeClock()
        async with alerting(settings, clock, rules=rules) as (services, system):
            for n in range(3):
                await services.clicks.record(click(clock.now, through=True, user=f"u{n}@contoso.com"))
            await system.engine.process_clicks()
            await _drain(system.outbox, clock)
            alerts, total = await system.writer.alerts.page(AlertFilter())
    assert total == 3 and len(mailbox.messages) == 3
    notes = [n for a in alerts for n in a.details["notes"]]
    assert notes == ["e-mail held for the recipients' summary: the rule's daily limit of 2 was reached"]
    summary = next(m for m in mailbox.messages if str(m["Subject"]).startswith("[Summary] 1 more alert "))
    text = next(p for p in summary.walk() if p.get_content_type() == "text/plain").get_payload(decode=True)
    assert b"u2@contoso.com" in text and b"daily limit of 2" in text


@pytest.mark.usefixtures("both_backends")
async def test_smtp_refusal_is_retried_until_delivered(make_settings: Callable[..., Settings],
                                                       tmp_path: Path) -> None:
    """A temporary SMTP failure leaves the e-mail waiting (with the reason) and a later try delivers it."""
    with smtp_server() as (mailbox, port):
        mailbox.refuse_next = 1
        settings = make_settings(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none")
        rules = load_rules(_rules(tmp_path, "      email:\n        recipients: [soc@contoso.com]\n"), settings)
        clock = FakeClock()
        async with alerting(settings, clock, rules=rules) as (services, system):
            await services.clicks.record(click(clock.now, through=True))
            await system.engine.process_clicks()
            await system.outbox.run_once()
            waiting = await system.outbox.list("pending")
            assert len(waiting) == 1 and "451" in (waiting[0].last_error or "")
            await _drain(system.outbox, clock)
            assert [i.status for i in await system.outbox.list()] == ["done"]
    assert len(mailbox.messages) == 1


@pytest.mark.usefixtures("both_backends")
async def test_webhook_is_signed_alert_json_and_retried(make_settings: Callable[..., Settings], tmp_path: Path,
                                                        aiohttp_server: AiohttpServer) -> None:
    """Webhooks POST the Graph alert JSON signed over timestamp, event and body; a 503 is retried until a 200."""
    received: list[tuple[bytes, dict[str, str]]] = []
    answers = [503, 200]

    async def receive(request: web.Request) -> web.Response:
        received.append((await request.read(), dict(request.headers)))
        return web.Response(status=answers.pop(0) if answers else 200)

    app = web.Application()
    app.router.add_post("/hook", receive)
    server = await aiohttp_server(app)
    url = f"http://127.0.0.1:{server.port}/hook"
    settings = make_settings()
    rules = load_rules(_rules(tmp_path, f"      webhooks:\n        - url: {url}\n          secret: s3cret\n"),
                       settings)
    clock = FakeClock()
    async with alerting(settings, clock, rules=rules) as (services, system):
        await services.clicks.record(click(clock.now, through=True))
        await system.engine.process_clicks()
        stored = json.dumps(await services.db.fetchall("SELECT * FROM outbox"))
        await _drain(system.outbox, clock)
    assert "s3cret" not in stored  # the secret is looked up when sending, never queued with the delivery
    assert len(received) == 2
    body, headers = received[-1]
    signature, event = headers[SIGNATURE_HEADER], headers[EVENT_HEADER]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", signature) and event == "alert.created"
    assert verify_signature("s3cret", body, signature, event=event)
    assert not verify_signature("other", body, signature, event=event)
    assert not verify_signature("s3cret", body, signature, event="alert.updated")  # relabelled
    assert not verify_signature("s3cret", body + b" ", signature, event=event)  # altered
    assert not verify_signature("s3cret", body, signature, event=event, now=time.time() + 600)  # replayed later
    document = json.loads(body)
    assert document["@odata.type"] == "#microsoft.graph.security.alert"
    assert document["title"] == "A user clicked through to a potentially malicious URL"
    assert document["severity"] == "high" and document["status"] == "new"
    assert received[0][1]["X-SafeLinks-Delivery"] == headers["X-SafeLinks-Delivery"]


def test_signature_scheme_as_documented() -> None:
    """v1 is HMAC-SHA256 of "<t>.<event>.<body>" in hex, as the README tells receivers to compute it."""
    body = b'{"id":"1"}'
    mac = hmac.new(b"s3cret", b"1700000000.alert.created." + body, hashlib.sha256).hexdigest()
    assert sign("s3cret", body, event="alert.created", timestamp=1700000000) == f"t=1700000000,v1={mac}"
    assert verify_signature("s3cret", body, f"t=1700000000,v1={mac}", event="alert.created", now=1700000100)
    for header in ("", "sha256=" + mac, f"v1={mac}", f"t=x,v1={mac}", f"t=1700000000,v1={mac[:-1]}0"):
        assert not verify_signature("s3cret", body, header, event="alert.created", now=1700000100), header


@pytest.mark.usefixtures("both_backends")
async def test_webhook_does_not_follow_redirects(make_settings: Callable[..., Settings], tmp_path: Path,
                                                 aiohttp_server: AiohttpServer) -> None:
    """A receiver answering with a redirect gets no second request; the delivery is kept as failed, saying why."""
    followed: list[str] = []

    async def elsewhere(request: web.Request) -> web.Response:
        followed.append(request.path)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", lambda request: web.Response(status=307, headers={"Location": "/elsewhere"}))
    app.router.add_post("/elsewhere", elsewhere)
    server = await aiohttp_server(app)
    settings = make_settings()
    rules = load_rules(_rules(tmp_path, f"      webhooks:\n        - url: http://127.0.0.1:{server.port}/hook\n"
                                        "          secret: s3cret\n"), settings)
    clock = FakeClock()
    async with alerting(settings, clock, rules=rules) as (services, system):
        await services.clicks.record(click(clock.now, through=True))
        await system.engine.process_clicks()
        await _drain(system.outbox, clock)
        items = await system.outbox.list()
    assert followed == []
    assert [i.status for i in items] == ["failed"] and "redirect" in (items[0].last_error or "")


@pytest.mark.usefixtures("both_backends")
async def test_webhook_without_secret_warns_at_start_and_says_unsigned(
        make_settings: Callable[..., Settings], tmp_path: Path, aiohttp_server: AiohttpServer,
        caplog: pytest.LogCaptureFixture) -> None:
    """No secret configured: a warning when the service starts, and the delivery's signature header says unsigned."""
    headers: list[dict[str, str]] = []

    async def receive(request: web.Request) -> web.Response:
        headers.append(dict(request.headers))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", receive)
    server = await aiohttp_server(app)
    settings = make_settings()
    url = f"http://hook-user:hook-pass@127.0.0.1:{server.port}/hook?token=t0ps3cret"
    rules = load_rules(_rules(tmp_path, f"      webhooks:\n        - url: {url}\n"), settings)
    clock = FakeClock()
    with caplog.at_level(logging.WARNING, logger="shared.alerts.webhooks"):
        async with alerting(settings, clock, rules=rules) as (services, system):
            await services.clicks.record(click(clock.now, through=True))
            await system.engine.process_clicks()
            await _drain(system.outbox, clock)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("no secret" in w and "unsigned" in w for w in warnings), warnings
    assert not any("hook-pass" in w or "t0ps3cret" in w for w in warnings)
    assert [h[SIGNATURE_HEADER] for h in headers] == ["unsigned"]


@pytest.mark.usefixtures("both_backends")
async def test_secrets_left_in_queued_deliveries_are_removed(make_settings: Callable[..., Settings]) -> None:
    """A webhook secret an older version copied into a queued delivery is removed at start; the rest stays."""
    settings = make_settings()
    async with alerting(settings, FakeClock()) as (services, system):
        await system.outbox.enqueue("webhook", {"url": "http://127.0.0.1:9/hook", "secret": "old-s3cret",
                                                "event": "alert.created", "document": {"id": "1"}})
        assert await drop_stored_secrets(services.db) == 1
        (row,) = await services.db.fetchall("SELECT payload FROM outbox")
    assert json.loads(row["payload"]) == {"url": "http://127.0.0.1:9/hook", "event": "alert.created",
                                          "document": {"id": "1"}}


@pytest.mark.usefixtures("both_backends")
async def test_webhook_refused_for_good_is_kept_as_failed(make_settings: Callable[..., Settings], tmp_path: Path,
                                                          aiohttp_server: AiohttpServer) -> None:
    """A 4xx other than 408/425/429 marks the delivery failed (shown in the outbox), not retried forever."""
    app = web.Application()
    app.router.add_post("/hook", lambda request: web.Response(status=410, text="gone"))
    server = await aiohttp_server(app)
    settings = make_settings()
    rules = load_rules(_rules(tmp_path, f"      webhooks:\n        - url: http://127.0.0.1:{server.port}/hook\n"),
                       settings)
    clock = FakeClock()
    async with alerting(settings, clock, rules=rules) as (services, system):
        await services.clicks.record(click(clock.now, through=True))
        await system.engine.process_clicks()
        await _drain(system.outbox, clock)
        items = await system.outbox.list()
    assert [(i.status, i.last_error) for i in items] == [("failed", "HTTP 410: gone")]


@pytest.mark.usefixtures("both_backends")
async def test_webhook_hears_of_changes_after_creation(make_settings: Callable[..., Settings], tmp_path: Path,
                                                       aiohttp_server: AiohttpServer) -> None:
    """Resolving or classifying an alert sends alert.updated with the new state, after alert.created."""
    from shared.alerts.actions import Actor, Changes

    received: list[tuple[str, dict[str, Any]]] = []

    async def receive(request: web.Request) -> web.Response:
        received.append((request.headers[EVENT_HEADER], json.loads(await request.read())))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", receive)
    server = await aiohttp_server(app)
    settings = make_settings()
    rules = load_rules(_rules(tmp_path, f"      webhooks:\n        - url: http://127.0.0.1:{server.port}/hook\n"
                                        "          secret: s3cret\n"), settings)
    clock = FakeClock()
    async with alerting(settings, clock, rules=rules) as (services, system):
        await services.clicks.record(click(clock.now, through=True))
        await system.engine.process_clicks()
        [alert], _ = await system.writer.alerts.page(AlertFilter())
        await system.actions.update_alert(alert.id, Changes(status="resolved", classification="truePositive"),
                                          Actor("aad-soc", "Ana"))
        await _drain(system.outbox, clock)
    assert [event for event, _ in received] == ["alert.created", "alert.updated"]
    updated = received[1][1]
    assert updated["status"] == "resolved" and updated["classification"] == "truePositive"
