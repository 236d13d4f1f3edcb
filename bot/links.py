"""Which links a Teams message carries: from its text, its HTML and its cards, unwrapped and de-duplicated.

Sources, in order: the text (as HTML when ``textFormat`` is xml/html), ``text/html`` attachments,
Adaptive Cards (``Action.OpenUrl`` targets, ``selectAction`` targets, and the links inside text,
text runs and fact values) and hero/thumbnail cards (``openUrl`` buttons and taps). Every link
other rewriters wrapped (Defender Safe Links, the Teams jump page, Proofpoint) is unwrapped first;
links this bot wrapped itself are left out, so nothing is wrapped twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

from bot.activity import Attachment, IncomingMessage
from shared.urls import extract_urls, href_target, unwrap

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
_BUTTON_CARDS = frozenset({"application/vnd.microsoft.card.hero", "application/vnd.microsoft.card.thumbnail"})
_TEXT_KEYS = ("text", "value", "title", "subtitle")
_MAX_DEPTH = 32  # a card nests containers; anything deeper is not a card Teams would render
MAX_LINKS = 200
# Characters of text a message may carry and still be read on the event loop (at most a few ms of work);
# a longer one, or one with cards, is read in a worker thread so it cannot hold up other activities.
INLINE_CHARACTERS = 8_192


def _card_texts_and_targets(node: Any, depth: int = 0) -> Iterator[tuple[str, bool]]:
    """(string, is_a_target) pairs from an Adaptive Card tree: targets are taken verbatim, texts are scanned."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "Action.OpenUrl" and isinstance(node.get("url"), str):
            yield node["url"], True
        for key in _TEXT_KEYS:
            value = node.get(key)
            if isinstance(value, str) and value:
                yield value, False
        for key, value in node.items():
            if isinstance(value, dict | list) and key != "refresh":
                yield from _card_texts_and_targets(value, depth + 1)
    elif isinstance(node, list):
        for item in node:
            yield from _card_texts_and_targets(item, depth + 1)


def _button_targets(content: Any) -> Iterator[str]:
    if not isinstance(content, dict):
        return
    for button in [*(content.get("buttons") or ()), content.get("tap")]:
        if isinstance(button, dict) and button.get("type") == "openUrl" and isinstance(button.get("value"), str):
            target = href_target(button["value"])
            if target is not None:
                yield target
    for key in ("title", "subtitle", "text"):
        if isinstance(content.get(key), str):
            yield from extract_urls(content[key], html=True)


def _attachment_links(attachment: Attachment) -> Iterator[str]:
    content_type = attachment.content_type.lower()
    content = attachment.content
    if content_type == "text/html" and isinstance(content, str):
        yield from extract_urls(content, html=True)
    elif content_type == ADAPTIVE_CARD:
        for value, is_target in _card_texts_and_targets(content):
            if is_target:
                target = href_target(value)
                if target is not None:
                    yield target
            else:
                yield from extract_urls(value)
    elif content_type in _BUTTON_CARDS:
        yield from _button_targets(content)


def raw_links(message: IncomingMessage) -> Iterator[str]:
    """Every link as it appears in the message, before unwrapping (duplicates included)."""
    if message.text:
        yield from extract_urls(message.text, html=message.is_html or ("<" in message.text and ">" in message.text))
    for attachment in message.attachments:
        # Teams often sends the same HTML as the text and as a text/html attachment: scan it once.
        if attachment.content_type == "text/html" and attachment.content == message.text and message.is_html:
            continue
        yield from _attachment_links(attachment)


def links_in(message: IncomingMessage, *, is_ours: Callable[[str], bool], limit: int = MAX_LINKS) -> list[str]:
    """The distinct link targets of a message, unwrapped, in order of appearance, without our own links."""
    seen: set[str] = set()
    found: list[str] = []
    for link in raw_links(message):
        if is_ours(link):
            continue
        target = unwrap(link)
        if target in seen or is_ours(target):
            continue
        seen.add(target)
        found.append(target)
        if len(found) >= limit:
            break
    return found


def _read_inline(message: IncomingMessage) -> bool:
    size = len(message.text)
    for attachment in message.attachments:
        if not isinstance(attachment.content, str):
            return False
        size += len(attachment.content)
    return size <= INLINE_CHARACTERS


async def links_of(message: IncomingMessage, *, is_ours: Callable[[str], bool], limit: int = MAX_LINKS) -> list[str]:
    """``links_in``, with large messages read off the event loop."""
    if _read_inline(message):
        return links_in(message, is_ours=is_ours, limit=limit)
    return await asyncio.to_thread(links_in, message, is_ours=is_ours, limit=limit)
