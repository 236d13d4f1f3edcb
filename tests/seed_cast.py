"""The people and the phishing link the alert scenarios share: a colleague posts, another clicks, an analyst acts."""

from __future__ import annotations

from collections.abc import Iterator

from tests.teams_standin import CHANNEL_ID, GROUP_CHAT_ID, TEAM_ID, TeamsStandIn, user

ALICE, BOB, SOC = user(1, name="Alice Colleague"), user(2, name="Bob Clicker"), user(7, name="Sam Analyst")
PHISH = "https://login.contoso-phish.com/reset"
POLICIES = """
policies:
  - {name: Staff, EnableForInternalSenders: true, AllowClickThrough: true, reply_mode: always}
rules:
  - {name: Staff, policy: Staff, priority: 0, recipient_domain_is: [contoso.example]}
"""


def cast_standin() -> Iterator[TeamsStandIn]:
    """A Teams stand-in whose team, channel and group chat hold the three of them (a fixture's body)."""
    people = [ALICE, BOB, SOC]
    standin = TeamsStandIn(members={TEAM_ID: people, CHANNEL_ID: people, GROUP_CHAT_ID: people}).start()
    try:
        yield standin
    finally:
        standin.stop()
