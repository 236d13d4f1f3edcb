"""What the delivery proofs share: Teams and SMTP stand-ins, replicas on one PostgreSQL, clicks that raise alerts.

Each malicious click here comes from a different user, sender and message, so every one opens an
incident of its own and gets its own card (a new thread in the security channel) and its own
e-mail; a click-through on it adds a second alert to the same incident, whose card is then
updated in place. That makes "exactly once" countable on the far side.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from shared.clicks import Workload
from shared.signing import Keyring, LinkContext, LinkSigner
from shared.store import Database
from shared.verdicts import Verdict
from shared.verdicts.admin import AdminVerdicts
from tests.conftest import BROWSER_UA, TEST_KEYS
from tests.processes import Replica, Replicas
from tests.smtp_server import Mailbox
from tests.teams_standin import CHANNEL_ID, TeamsStandIn, _Failure, channel_post, sender_of, user
from tests.waiting import eventually

SOC = user(7, name="Sam Analyst")
PUBLIC = "http://127.0.0.1:3978"
_TOKEN = re.compile(r'name="token" value="([^"]+)"')


@dataclass
class StormyTeams(TeamsStandIn):
    """The Teams stand-in, plus a storm (429 with Retry-After, then 500) for a while, and held updates."""

    storm_429_until: float = 0.0
    storm_500_until: float = 0.0
    hold_updates: threading.Event = field(default_factory=threading.Event)
    held: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)  # held updates answered since, one way or the other

    def storm(self, throttled: float, failing: float) -> None:
        now = time.monotonic()
        self.storm_429_until = now + throttled
        self.storm_500_until = now + throttled + failing

    def _take_failure(self, path: str) -> _Failure | None:
        now = time.monotonic()
        if now < self.storm_429_until:
            return _Failure(429, "1", 1, None)
        if now < self.storm_500_until:
            return _Failure(500, None, 1, None)
        return super()._take_failure(path)

    async def _put(self, request: web.Request) -> web.Response:
        if not self.hold_updates.is_set():
            return await super()._put(request)
        self.held.append(request.path)
        try:
            while self.hold_updates.is_set():
                await asyncio.sleep(0.02)
            if request.transport is None or request.transport.is_closing():
                # The caller died while we held it: like a request lost on the way, it changes nothing.
                return web.Response(status=499)
            return await super()._put(request)
        finally:
            self.released.append(request.path)

    # What arrived, from the security channel's point of view.

    def threads(self) -> list[Any]:
        """Cards that started a thread in the security channel (one per incident), in arrival order."""
        return [c for c in self.delivered("POST") if c.path == "/v3/conversations"
                and "application/vnd.microsoft.card.adaptive" in json.dumps(c.body)]

    def updates(self) -> list[Any]:
        return [c for c in self.delivered("PUT") if c.conversation_id and c.conversation_id.startswith(CHANNEL_ID)]


def phish_url(n: int) -> str:
    return f"https://login.phish{n}.example/reset"


def link_for(n: int, url: str) -> str:
    """A wrapped link as Teams user n would get it from sender n in message n (its own incident)."""
    signer = LinkSigner(Keyring.parse(TEST_KEYS, "k1"), PUBLIC)
    context = LinkContext(workload=Workload.TEAMS, recipient=f"user{n}@contoso.example",
                          recipient_id=f"aad-user-{n}", tenant="tenant-1", conversation=f"19:chat-{n}@thread.v2",
                          message=f"17300000{n:05d}", sender=f"sender{n}@fabrikam.example")
    return signer.wrap(url, context).removeprefix(PUBLIC)


async def mark_malicious(db: Database, numbers: range) -> None:
    admin = AdminVerdicts(db)
    await admin.load()
    for n in numbers:
        await admin.set(f"phish{n}.example", Verdict.MALICIOUS, threat_types=("Phish",), reason="test phish")


async def click(http: aiohttp.ClientSession, proxy: Replica, n: int, url: str, *, through: bool = False) -> int:
    """One person's click (and, with ``through``, their 'Continue anyway'); returns the last status."""
    async with http.get(proxy.base + link_for(n, url), allow_redirects=False,
                        headers={"User-Agent": BROWSER_UA}) as r:
        status = r.status
        page = await r.text()
    if not through:
        return status
    token = _TOKEN.search(page)
    assert token is not None, f"no click-through offered for {url}: {status}"
    async with http.post(proxy.base + "/v1/url/continue", data={"token": token.group(1)}, allow_redirects=False,
                         headers={"User-Agent": BROWSER_UA, "Sec-Fetch-Site": "same-origin"}) as r:
        return r.status


async def make_security_channel(bot: Replica, teams: TeamsStandIn) -> None:
    """An admin says 'alerts here' in a channel: the bot's confirmation arrives."""
    before = len(teams.delivered())
    activity = channel_post(teams.service_url, sender_of(SOC), "alerts here", mention=True,
                            activity_id="1730462409999")
    async with aiohttp.ClientSession() as http, http.post(
            bot.base + "/api/messages", json=activity,
            headers={"Authorization": f"Bearer {teams.token()}"}) as r:
        assert r.status in (200, 201), await r.text()
    await eventually(lambda: _more(teams, before), timeout=20.0)


async def _more(teams: TeamsStandIn, before: int) -> bool:
    return len(teams.delivered()) > before


def replicas_for(tmp: Path, database_url: str, teams: TeamsStandIn, smtp_port: int, **more: Any) -> Replicas:
    return Replicas.on(
        tmp, database_url, public_url=PUBLIC, admins=json.dumps([SOC["aadObjectId"]]), smtp_host="127.0.0.1",
        smtp_port=smtp_port, smtp_security="none", alert_email_to="soc@contoso.example", smtp_timeout=3,
        outbox_lease_seconds=3, **teams.bot_settings(), **more)


def subjects(box: Mailbox) -> list[str]:
    return [str(m["Subject"]) for m in box.messages]


def urls_in(call: Any) -> set[str]:
    """The phishing URLs a card names (cards show them defanged, as text: hxxps[:]//login[.]phish1[.]example)."""
    return {phish_url(int(n)) for n in re.findall(r"hxxps\[:\]//login\[\.\]phish(\d+)\[\.\]example/reset",
                                                  json.dumps(call.body))}
