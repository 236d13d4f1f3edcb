"""Bot trust: the unauthenticated start rule, tenants, the serviceUrl guard, exact JSON, and whose word grants rights.

Every request goes through the real application and the SDK's real token validation against the
Teams stand-in; a second stand-in plays the internal service an attacker would aim the bot at.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot import trust
from bot.adapter import BotFrameworkAdapter
from bot.errors import ChannelError
from bot.notify import security_channel
from safelinks.server import create_app
from shared.config import Settings
from tests.conftest import run_cli
from tests.teams_standin import (
    GROUP_CHAT_ID,
    TENANT,
    TeamsStandIn,
    card_action,
    channel_post,
    personal_message,
    running_bot,
    sender_of,
    user,
)

ADMIN, ALICE = user(7, name="Ada Admin"), user(1, name="Alice Example")
OTHER_TENANT = "0badc0de-0000-4000-8000-000000000000"


@pytest.fixture
def standin() -> Iterator[TeamsStandIn]:
    teams = TeamsStandIn(members={"a:1personal-chat": [ALICE]}).start()
    yield teams
    teams.stop()


@pytest.fixture
def victim() -> Iterator[TeamsStandIn]:
    """An internal HTTP service on loopback that nobody configured as a connector."""
    inside = TeamsStandIn().start()
    yield inside
    inside.stop()


def _open_settings(make_settings: Callable[..., Settings], **extra: Any) -> Settings:
    """Unauthenticated and listening beyond loopback, allowed explicitly."""
    return make_settings(host="0.0.0.0", allow_unauthenticated_bot=True, admins=ADMIN["aadObjectId"], **extra)


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"host": "0.0.0.0"}, "SAFELINKS_HOST=0.0.0.0"),
        ({"host": "10.1.2.3"}, "SAFELINKS_HOST=10.1.2.3"),
        ({"public_url": "https://links.contoso.com"}, "SAFELINKS_PUBLIC_URL=https://links.contoso.com"),
        ({"host": "::", "public_url": "http://192.0.2.10:3978"}, "SAFELINKS_PUBLIC_URL=http://192.0.2.10:3978"),
    ],
)
def test_unauthenticated_bot_refuses_to_start_beyond_loopback(
        make_settings: Callable[..., Settings], overrides: dict[str, str], names: str) -> None:
    """Without MicrosoftAppId a non-loopback bind address or public URL stops the start, naming the setting."""
    settings = make_settings(**overrides)
    with pytest.raises(trust.UnsafeStart, match=names):
        create_app(settings)
    create_app(settings, role="proxy")  # the proxy alone takes no activities


def test_serve_exits_with_the_reason(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                     tmp_path: Any) -> None:
    """``safelinks serve`` on 0.0.0.0 without an app id exits 2 before listening and says how to fix it."""
    monkeypatch.setenv("SAFELINKS_DATA_DIR", str(tmp_path))
    code, out, err = run_cli(capsys, "serve", "--host", "0.0.0.0", "--port", "3999")
    assert code == 2
    assert "SAFELINKS_ALLOW_UNAUTHENTICATED_BOT=true" in err and "listening" not in out


@pytest.mark.usefixtures("both_backends")
async def test_allowed_open_mode_says_so_and_grants_nothing(
        standin: TeamsStandIn, make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture) -> None:
    """With the explicit flag the bot starts, warns, and a forged admin neither moves the channel nor acts on cards."""
    caplog.set_level(logging.INFO)
    async with running_bot(_open_settings(make_settings)) as bot:
        assert "UNAUTHENTICATED AND REACHABLE BEYOND LOOPBACK" in caplog.text
        forged = channel_post(standin.service_url, sender_of(ADMIN), "alerts here", mention=True)
        # The connector is on loopback, which open mode never calls: the activity is refused whole.
        assert (await bot.post(forged)).status == 403
        assert await security_channel(bot.services.db) is None
        assert standin.calls == []


@pytest.mark.usefixtures("both_backends")
async def test_card_actions_are_refused_when_nothing_is_verified(
        make_settings: Callable[..., Settings]) -> None:
    """In open mode a card button (here: allow a URL tenant-wide) answers 403 and changes nothing."""
    settings = _open_settings(make_settings, bot_service_urls="https://smba.trafficmanager.net/")
    async with running_bot(settings) as bot:
        action = card_action("https://smba.trafficmanager.net/emea/", sender_of(ADMIN), "alert.allow",
                             {"alert_id": 1})
        response = await bot.post(action)
        assert response.status == 200
        body = await response.json()
        assert body["statusCode"] == 403 and "authenticated" in body["value"]["message"]
        assert await bot.rows("tabl_entries") == []
        assert await bot.rows("alert_actions") == []


@pytest.mark.usefixtures("both_backends")
async def test_forged_admin_command_is_refused_in_open_mode(make_settings: Callable[..., Settings]) -> None:
    """In open mode an admin's aadObjectId in an activity is not believed: ``alerts here`` changes nothing."""
    settings = _open_settings(make_settings, bot_service_urls="https://smba.trafficmanager.net/")
    async with running_bot(settings) as bot:
        forged = channel_post("https://smba.trafficmanager.net/emea/", sender_of(ADMIN), "alerts here",
                              mention=True)
        assert (await bot.post(forged)).status == 201
        assert await security_channel(bot.services.db) is None
        replies = [json.loads(r["payload"]) for r in await bot.rows("outbox")]
        assert any("Only Safe Links admins" in json.dumps(p) for p in replies)


@pytest.mark.usefixtures("both_backends")
async def test_admin_command_works_when_teams_vouches(
        standin: TeamsStandIn, make_settings: Callable[..., Settings]) -> None:
    """With a verified token the configured admin's ``alerts here`` does set the security channel."""
    settings = make_settings(admins=ADMIN["aadObjectId"], **standin.bot_settings())
    async with running_bot(settings) as bot:
        post = channel_post(standin.service_url, sender_of(ADMIN), "alerts here", mention=True)
        assert (await bot.post(post, standin.token())).status == 201
        assert await security_channel(bot.services.db) is not None


@pytest.mark.parametrize(
    "service_url",
    ["http://169.254.169.254/latest/", "https://attacker.example/", "http://10.0.0.8:8080/",
     "https://smba.trafficmanager.net.attacker.example/", "https://smba.trafficmanager.net@attacker.example/",
     "http://smba.trafficmanager.net/amer/", "file:///etc/passwd", "victim"],
)
async def test_local_mode_calls_only_teams_or_loopback(
        standin: TeamsStandIn, victim: TeamsStandIn, make_settings: Callable[..., Settings],
        service_url: str) -> None:
    """An anonymous activity naming any other serviceUrl is refused 403; nothing is stored, nothing is called."""
    async with running_bot(make_settings()) as bot:
        url = victim.service_url if service_url == "victim" else service_url
        activity = personal_message(url, sender_of(ALICE), "look at https://example.com/offer")
        response = await bot.post(activity)
        if service_url == "victim":  # loopback in local mode: that is the developer's own machine
            assert response.status == 201
            return
        assert response.status == 403
        assert "serviceUrl" in await response.text()
        assert await bot.rows("teams_conversations") == []
        assert await bot.rows("outbox") == []


@pytest.mark.usefixtures("both_backends")
async def test_authenticated_bot_calls_only_configured_connectors(
        standin: TeamsStandIn, victim: TeamsStandIn, make_settings: Callable[..., Settings]) -> None:
    """A validly signed activity naming an unlisted loopback service is refused; that service sees nothing."""
    async with running_bot(make_settings(**standin.bot_settings())) as bot:
        activity = personal_message(victim.service_url, sender_of(ALICE), "look at https://example.com/offer")
        response = await bot.post(activity, standin.token(service_url=victim.service_url))
        assert response.status == 403
        assert victim.calls == [] and await bot.rows("outbox") == []


async def test_every_outgoing_call_is_checked_again(
        standin: TeamsStandIn, victim: TeamsStandIn, make_settings: Callable[..., Settings]) -> None:
    """A stored reference pointing at an unlisted endpoint fails with 403 before any request leaves."""
    adapter = BotFrameworkAdapter(make_settings(**standin.bot_settings()))
    reference = {"serviceUrl": victim.service_url, "conversation": {"id": GROUP_CHAT_ID}, "channelId": "msteams",
                 "bot": {"id": "28:bot"}}
    with pytest.raises(ChannelError) as caught:
        await adapter.send(reference, conversation_id=GROUP_CHAT_ID, card=None, text="hi", reply_to_id=None)
    assert caught.value.status == 403 and not caught.value.transient
    assert victim.calls == [] and standin.tokens_issued == []


@pytest.mark.usefixtures("both_backends")
async def test_other_tenants_get_403_and_a_log_line(
        standin: TeamsStandIn, make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture) -> None:
    """Only configured tenants are processed (default: MicrosoftAppTenantId); others are refused and logged."""
    caplog.set_level(logging.WARNING)
    async with running_bot(make_settings(**standin.bot_settings())) as bot:
        activity = personal_message(standin.service_url, sender_of(ALICE), "look at https://example.com/offer")
        activity["conversation"]["tenantId"] = OTHER_TENANT
        activity["channelData"]["tenant"]["id"] = OTHER_TENANT
        response = await bot.post(activity, standin.token())
        assert response.status == 403
        assert OTHER_TENANT in caplog.text and "SAFELINKS_TENANT_IDS" in caplog.text
        assert await bot.rows("teams_messages") == [] and await bot.rows("outbox") == []
        ours = personal_message(standin.service_url, sender_of(ALICE), "look at https://example.com/offer")
        assert (await bot.post(ours, standin.token())).status == 201


def test_tenant_defaults(make_settings: Callable[..., Settings]) -> None:
    """MicrosoftAppType defaults to SingleTenant; SAFELINKS_TENANT_IDS defaults to MicrosoftAppTenantId."""
    settings = make_settings(microsoft_app_id="app", microsoft_app_password="pw", microsoft_app_tenant_id=TENANT)
    assert settings.microsoft_app_type == "SingleTenant" and settings.tenant_ids == [TENANT]
    listed = make_settings(tenant_ids=f"{TENANT},{OTHER_TENANT.upper()}")
    assert listed.tenant_ids == [TENANT, OTHER_TENANT]
    assert trust.tenant_allowed(listed, OTHER_TENANT) and not trust.tenant_allowed(settings, OTHER_TENANT)
    assert trust.tenant_allowed(make_settings(), OTHER_TENANT)  # none configured: local development


def test_the_start_says_which_tenants_are_accepted(make_settings: Callable[..., Settings]) -> None:
    """The start describes the tenant rule: ANY when none is configured, the list otherwise."""
    assert "ANY" in trust.describe(make_settings())[1]
    assert TENANT in trust.describe(make_settings(tenant_ids=TENANT))[1]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [(b"[" * 100_000 + b"]" * 100_000, "application/json", 400),
     (b'{"type": "message", "x": ' + b"[" * 80 + b"]" * 80 + b"}", "application/json", 400),
     (b'{"type": "message"}', "text/plain; note=application/json", 415),
     (b'{"type": "message"}', "application/json-seq", 415),
     (b'\xff{"type": "message"}', "application/json", 400),
     (json.dumps(personal_message("http://127.0.0.1:9/", sender_of(ALICE), "\ud800 https://example.com/x")).encode(),
      "application/json", 400)],
)
async def test_hostile_bodies_are_4xx(make_settings: Callable[..., Settings], body: bytes, content_type: str,
                                      status: int) -> None:
    """Deep nesting, non-UTF-8 and anything but exactly application/json are refused with 4xx, never 500."""
    async with running_bot(make_settings()) as bot:
        response = await bot.client.post("/api/messages", data=body, headers={"Content-Type": content_type})
        assert response.status == status


async def test_serve_says_the_bot_mode_and_which_tenants(tmp_path: Any) -> None:
    """``safelinks serve`` prints the bot's trust mode and, with no tenant configured, that every tenant is accepted."""
    import os
    import subprocess
    import sys

    from tests.test_durability import free_port, wait_healthy

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFELINKS_", "Microsoft"))}
    env.update(SAFELINKS_DATA_DIR=str(tmp_path), SAFELINKS_PORT=str(port), SAFELINKS_LOG_LEVEL="warning")
    proc = subprocess.Popen([sys.executable, "-m", "safelinks", "serve"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", proc)  # type: ignore[arg-type]
        assert proc.stdout is not None
        lines: list[str] = []
        while not lines or "try a link" not in lines[-1]:  # the banner ends with the sample link
            lines.append(proc.stdout.readline())
            assert lines[-1], "serve closed its output before the banner ended"
    finally:
        proc.terminate()
        proc.wait(60)
    text = "".join(lines)
    assert "LOCAL UNAUTHENTICATED" in text and "bot tenants: ANY" in text
