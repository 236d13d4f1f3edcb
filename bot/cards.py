"""The Adaptive Cards the bot posts: the reply listing a message's wrapped links, and plain notices.

Cards are version 1.5 (the most Teams renders) and degrade: ``fallbackText`` for clients that
render no cards, a markdown link in place of each ``ActionSet`` for clients older than 1.2, and the
``refresh`` (Universal Actions, 1.4) is ignored by clients that lack it, which then show the
shared card. Hosts are shown as their ASCII (punycode) form, so a look-alike host cannot pass for
another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from shared.escaping import card_text as _plain
from shared.urls import display_host
from shared.verdicts.model import Verdict

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.5"
VIEWER_VERB = "safelinks.viewer"
MAX_SHOWN = 15

_BADGES: dict[Verdict, tuple[str, str]] = {
    Verdict.MALICIOUS: ("Malicious", "Attention"),
    Verdict.SUSPICIOUS: ("Suspicious", "Warning"),
    Verdict.PENDING: ("Scanning", "Accent"),
    Verdict.CLEAN: ("No known threat", "Good"),
    Verdict.UNKNOWN: ("Checked when opened", "Default"),
}


@dataclass(frozen=True, slots=True)
class CardLink:
    """One line of the reply card."""

    target: str
    wrapped: str
    verdict: Verdict = Verdict.UNKNOWN


def host_of(url: str) -> str:
    """The host the browser opens for ``url``, as ASCII (punycode); the URL itself if it opens none."""
    return display_host(url) or url[:80]


def _card(body: list[dict[str, Any]], fallback_text: str, **extra: Any) -> dict[str, Any]:
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": SCHEMA,
        "version": VERSION,
        "fallbackText": fallback_text,
        "msteams": {"width": "Full"},
        "body": body,
    }
    card.update(extra)
    return card


@lru_cache(maxsize=1024)
def _shown_host(host: str) -> str:
    # Hosts repeat from message to message (a tenant's own sites, the big ones): escaped once.
    return _plain(host)


def _link_block(link: CardLink, host: str) -> dict[str, Any]:
    label, color = _BADGES[link.verdict]
    shown = _shown_host(host)
    return {
        "type": "Container",
        "separator": True,
        "items": [
            {
                "type": "ColumnSet",
                "columns": [
                    {"type": "Column", "width": "stretch",
                     "items": [{"type": "TextBlock", "text": shown, "wrap": True, "weight": "Bolder"}]},
                    {"type": "Column", "width": "auto",
                     "items": [{"type": "TextBlock", "text": label, "color": color, "weight": "Bolder",
                                "horizontalAlignment": "Right"}]},
                ],
            },
            {
                "type": "ActionSet",
                "actions": [{"type": "Action.OpenUrl", "title": f"Open {host}", "url": link.wrapped}],
                "fallback": {"type": "TextBlock", "text": f"[Open {shown}]({link.wrapped})", "wrap": True},
            },
        ],
    }


def reply_card(links: Sequence[CardLink], *, notice: str | None = None,
               refresh: dict[str, Any] | None = None) -> dict[str, Any]:
    """The reply in the thread: each link's host, a verdict badge, and its wrapped link."""
    shown = list(links[:MAX_SHOWN])
    hosts = [host_of(link.target) for link in shown]
    risky = sum(1 for link in links if link.verdict.risky)
    title = "Links in this message are checked when opened"
    if risky:
        title = f"Warning: {risky} link{'s' if risky > 1 else ''} in this message may be harmful"
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": title, "wrap": True, "weight": "Bolder",
         "color": "Attention" if risky else "Default"},
    ]
    if notice:
        body.append({"type": "TextBlock", "text": _plain(notice), "wrap": True, "isSubtle": True})
    body.extend(_link_block(link, host) for link, host in zip(shown, hosts, strict=True))
    if len(links) > len(shown):
        body.append({"type": "TextBlock", "text": f"and {len(links) - len(shown)} more", "isSubtle": True})
    # The wrapped links are long: the plain-text fallback names the hosts only, to keep the card small.
    fallback = "Safe Links: " + "; ".join(
        f"{host} ({_BADGES[link.verdict][0]})" for link, host in zip(shown, hosts, strict=True))
    extra: dict[str, Any] = {"refresh": refresh} if refresh else {}
    return _card(body, fallback, **extra)


def viewer_refresh(conversation_id: str, message_id: str, user_ids: Sequence[str]) -> dict[str, Any]:
    """Universal Actions user-specific views: each listed viewer's client asks for their own card."""
    return {
        "action": {"type": "Action.Execute", "verb": VIEWER_VERB, "title": "Refresh",
                   "data": {"conversation": conversation_id, "message": message_id}},
        "userIds": list(user_ids),
    }


def notice_card(title: str, lines: Sequence[str] = (), *, color: str = "Default") -> dict[str, Any]:
    """A short card with a title and lines of text (deleted messages, command answers)."""
    body: list[dict[str, Any]] = [{"type": "TextBlock", "text": title, "wrap": True, "weight": "Bolder",
                                   "color": color}]
    body.extend({"type": "TextBlock", "text": line, "wrap": True, "spacing": "Small"} for line in lines)
    return _card(body, " ".join([title, *lines]))


def facts_card(title: str, facts: Sequence[tuple[str, str]], lines: Sequence[str] = (), *,
               color: str = "Default") -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": title, "wrap": True, "weight": "Bolder", "color": color},
        {"type": "FactSet", "facts": [{"title": k, "value": _plain(v)} for k, v in facts]},
    ]
    body.extend({"type": "TextBlock", "text": line, "wrap": True, "isSubtle": True} for line in lines)
    return _card(body, title + ". " + "; ".join(f"{k}: {v}" for k, v in facts))


def deleted_card() -> dict[str, Any]:
    return notice_card("The message this card answered was deleted",
                       ["Its links are no longer listed here. The security team keeps a record of it."])


def links_removed_card() -> dict[str, Any]:
    return notice_card("The message was edited and no longer holds links")


# What the bot says it can do: the ``help`` answer and the end of the greeting.
HELP_LINES = (
    "**help**: this list.",
    "**check <link>**: what is known about a link, and why.",
    "**alerts here** (admins): post security alerts to this channel.",
    "**status** (admins): how the bot and its deliveries are doing.",
)
_WHERE = {"personal": "our chat", "groupChat": "this chat", "channel": "this team"}


def greeting_card(conversation_type: str) -> dict[str, Any]:
    """The card posted once where the bot is installed (``conversation_type``: personal, groupChat, channel)."""
    return notice_card(
        "Safe Links is here",
        [f"I check the links posted in {_WHERE[conversation_type]}. When a link may be harmful I answer in the "
         "thread with a safe way to open it; every link is checked again when someone opens it.",
         "Messages with links are kept for the security team.", *HELP_LINES],
    )
