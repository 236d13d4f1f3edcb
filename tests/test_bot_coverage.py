"""Who is protected: every conversation and every sender by default, following the readers' policies."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from shared.config import Settings
from shared.store import open_database
from shared.verdicts.admin import AdminVerdicts
from shared.verdicts.model import Verdict
from tests.conftest import BROWSER_UA
from tests.teams_standin import (
    GROUP_CHAT_ID,
    PERSONAL_ID,
    TEAM_ID,
    BotHarness,
    TeamsStandIn,
    channel_post,
    group_chat_message,
    personal_message,
    running_bot,
    sender_of,
    user,
)
from tests.test_bot_messages import card_of, open_urls, send

pytestmark = pytest.mark.usefixtures("both_backends")  # every test here goes through the store

ALICE, BOB, CAROL = user(1, name="Alice Example"), user(2, name="Bob Builder"), user(3, name="Carol Loud")
EVE = user(9, name="Eve Outside", tenant="0badc0de-0000-4000-8000-000000000009")
MALICIOUS = "see https://login.evil.example/reset"

# (name, activity builder): colleagues and guests, in a personal chat, a group chat, a channel post and a reply.
PLACES: list[tuple[str, Callable[[str, dict[str, Any]], dict[str, Any]]]] = [
    ("personal chat", lambda url, s: personal_message(url, s, MALICIOUS)),
    ("group chat", lambda url, s: group_chat_message(url, s, MALICIOUS)),
    ("channel post", lambda url, s: channel_post(url, s, MALICIOUS)),
    ("channel reply", lambda url, s: channel_post(url, s, MALICIOUS, activity_id="1730462400009",
                                                  root="1730462400001")),
]


@pytest.fixture
def standin() -> Iterator[TeamsStandIn]:
    everyone = [ALICE, BOB, CAROL, EVE]
    teams = TeamsStandIn(members={TEAM_ID: everyone, GROUP_CHAT_ID: everyone, PERSONAL_ID: [ALICE]}).start()
    yield teams
    teams.stop()


async def _bot(standin: TeamsStandIn, make_settings: Callable[..., Settings], tmp_path: Path,
               policies: str | None) -> AsyncIterator[BotHarness]:
    options: dict[str, Any] = dict(standin.bot_settings())
    if policies is not None:
        path = tmp_path / "policies.yaml"
        path.write_text(policies, encoding="utf-8")
        options["policy_file"] = path
    async with running_bot(make_settings(**options)) as harness:
        await harness.services.admin_verdicts.set("evil.example", Verdict.MALICIOUS, threat_types=("Phish",),
                                                  set_by="cli")
        yield harness


@pytest.fixture
async def bot(standin: TeamsStandIn, make_settings: Callable[..., Settings], tmp_path: Path
              ) -> AsyncIterator[BotHarness]:
    """The default configuration: no policy file, Built-in protection for everyone."""
    async for harness in _bot(standin, make_settings, tmp_path, None):
        yield harness


@pytest.mark.parametrize("sender", [ALICE, EVE], ids=["colleague", "guest"])
@pytest.mark.parametrize(("place", "activity"), PLACES, ids=[p[0] for p in PLACES])
async def test_default_policy_protects_every_conversation_and_sender(
        bot: BotHarness, standin: TeamsStandIn, place: str,
        activity: Callable[[str, dict[str, Any]], dict[str, Any]], sender: dict[str, Any]) -> None:
    """With the default policy a malicious link gets a warning card wherever it is posted and whoever posts it."""
    await send(bot, standin, activity(standin.service_url, sender_of(sender)))
    await standin.wait_for(lambda s: len(s.delivered()) == 1)
    card = card_of(standin.delivered()[0])
    assert "login.evil.example" in str(card) and "Malicious" in str(card)
    assert bot.services.signer.decode(open_urls(card)[0]).url == "https://login.evil.example/reset"


async def test_clean_link_in_a_group_chat_stays_quiet_by_default(bot: BotHarness, standin: TeamsStandIn) -> None:
    """risky-only stays the default outside personal chats: a clean link from a colleague gets no card."""
    await send(bot, standin, group_chat_message(standin.service_url, sender_of(ALICE),
                                                "see https://docs.contoso.example/guide"))
    assert await bot.rows("outbox") == []
    assert len(await bot.rows("teams_messages")) == 1


TEAMS_OFF = """
policies:
  - {name: NoTeams, EnableSafeLinksForTeams: false, EnableForInternalSenders: true}
  - {name: Teams, EnableSafeLinksForTeams: true, EnableForInternalSenders: false}
rules:
  - {name: NoTeams, policy: NoTeams, priority: 0, recipient_domain_is: [contoso.example]}
"""


@pytest.mark.parametrize(
    ("policies", "cards"),
    [
        (TEAMS_OFF, 0),  # no reader has Safe Links for Teams: nothing to protect
        (TEAMS_OFF.replace("priority: 0, recipient_domain_is: [contoso.example]",
                           "priority: 0, SentTo: [alice1@contoso.example]"), 1),  # the other readers have it
    ],
    ids=["all readers off", "sender off, readers on"],
)
async def test_protection_follows_the_readers_policies(
        standin: TeamsStandIn, make_settings: Callable[..., Settings], tmp_path: Path, policies: str,
        cards: int) -> None:
    """Whether a message is protected follows its readers' EnableSafeLinksForTeams, not the sender's settings."""
    async for bot in _bot(standin, make_settings, tmp_path, policies):
        await send(bot, standin, group_chat_message(standin.service_url, sender_of(ALICE), MALICIOUS))
        assert len(await bot.rows("outbox")) == cards
        assert len(await bot.rows("teams_messages")) == 1


async def test_warning_page_says_why_to_the_person_who_clicked(bot: BotHarness, standin: TeamsStandIn) -> None:
    """The warning's "Why" names who judged the site in plain words; the source and who set it stay in the record."""
    await send(bot, standin, channel_post(standin.service_url, sender_of(ALICE), MALICIOUS))
    await standin.wait_for(lambda s: len(s.delivered()) == 1)
    link = urlsplit(open_urls(card_of(standin.delivered()[0]))[0])
    response = await bot.client.get(f"{link.path}?{link.query}", headers={"User-Agent": BROWSER_UA},
                                    allow_redirects=False)
    page = await response.text()
    why = re.search(r'<p class="why">(.*?)</p>', page, re.DOTALL)
    assert response.status == 200 and why is not None
    assert "Your security team marked this site as phishing." in why.group(1)
    assert "admin" not in why.group(1) and "cli" not in why.group(1) and "evil.example/" not in why.group(1)
    (click,) = await bot.rows("clicks")
    assert click["verdict_source"] == "admin"


async def test_message_right_after_a_verdict_set_elsewhere_gets_the_warning(
        bot: BotHarness, standin: TeamsStandIn) -> None:
    """A verdict set by another process (the CLI) a moment before a message shows on that message's card."""
    url = "https://portal.fresh-phish.com/login"
    await send(bot, standin, personal_message(standin.service_url, sender_of(ALICE), url))
    await standin.wait_for(lambda s: len(s.delivered()) == 1)
    assert "Malicious" not in str(card_of(standin.delivered()[0]))  # unknown, and now cached by the bot
    other = await open_database(bot.services.settings.effective_database_url)  # the CLI's own connection
    try:
        await AdminVerdicts(other).set("fresh-phish.com", Verdict.MALICIOUS, threat_types=("Phish",), set_by="cli")
    finally:
        await other.close()
    await send(bot, standin, personal_message(standin.service_url, sender_of(ALICE), url,
                                              activity_id="1730462400299"))
    await standin.wait_for(lambda s: len(s.delivered()) == 2)
    assert "Malicious" in str(card_of(standin.delivered()[1]))
