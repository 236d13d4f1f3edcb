"""Reading Teams activities into our types, and finding a message's links (pure functions, no servers)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from bot import wire
from bot.activity import ConversationType
from bot.cards import CardLink, host_of, reply_card
from bot.links import INLINE_CHARACTERS, links_in, links_of
from shared.evidence import TeamsMessageEvidence, snippet_of
from shared.verdicts.model import Verdict


def _message(text: str = "", text_format: str = "plain", attachments: list[dict[str, Any]] | None = None,
             **extra: Any) -> dict[str, Any]:
    activity = {"type": "message", "id": "m1", "text": text, "textFormat": text_format,
                "conversation": {"id": "a:1"}, "from": {"id": "29:u"}, "recipient": {"id": "28:b"},
                "channelData": {"tenant": {"id": "t1"}}}
    if attachments:
        activity["attachments"] = attachments
    activity.update(extra)
    return activity


def _ours(url: str) -> bool:
    return url.startswith("https://links.contoso.example/v1/url?")


@pytest.mark.parametrize(
    ("activity", "expected"),
    [
        (_message("see https://a.example/x and www.b.example."), ["https://a.example/x", "http://www.b.example"]),
        (_message('<p><a href="https://c.example/q?a=1&amp;b=2">here</a></p>', "xml"), ["https://c.example/q?a=1&b=2"]),
        (_message("dup https://a.example/ https://a.example/"), ["https://a.example/"]),
        (_message("mine https://links.contoso.example/v1/url?url=x&data=y&sig=z"), []),
        (_message("", attachments=[{"contentType": "text/html", "content": '<a href="https://h.example/">x</a>'}]),
         ["https://h.example/"]),
        (_message("", attachments=[{"contentType": "application/vnd.microsoft.card.adaptive", "content": {
            "type": "AdaptiveCard", "body": [{"type": "FactSet", "facts": [{"title": "t", "value": "https://f.example"}]}],
            "selectAction": {"type": "Action.OpenUrl", "url": "https://s.example/"},
            "actions": [{"type": "Action.OpenUrl", "url": "javascript:alert(1)"}]}}]),
         ["https://f.example", "https://s.example/"]),
        (_message("", attachments=[{"contentType": "application/vnd.microsoft.card.hero", "content": {
            "buttons": [{"type": "openUrl", "value": "https://btn.example/"}, {"type": "imBack", "value": "x"}]}}]),
         ["https://btn.example/"]),
        (_message("https://urldefense.proofpoint.com/v2/url?u=https-3A__pp.example_a&d=x&c=y"), ["https://pp.example/a"]),
        (_message("", attachments=[{"contentType": "application/vnd.microsoft.card.adaptive", "content": {
            "type": "AdaptiveCard", "actions": [{"type": "Action.OpenUrl", "url": "http:evil.example/a"},
                                                {"type": "Action.OpenUrl", "url": " //other.example/b\n"}]}}]),
         ["http:evil.example/a", "https://other.example/b"]),
        (_message("", attachments=[{"contentType": "application/vnd.microsoft.card.hero", "content": {
            "buttons": [{"type": "openUrl", "value": "HTTPS:\\\\btn.example"},
                        {"type": "openUrl", "value": "mailto:x"}]}}]),
         ["HTTPS:\\\\btn.example"]),
    ],
)
def test_links_in_messages(activity: dict[str, Any], expected: list[str]) -> None:
    """Text, HTML, text/html and card attachments give their http(s) links once each, unwrapped, ours left out."""
    assert links_in(wire.message(activity), is_ours=_ours) == expected


@pytest.mark.parametrize(
    ("conversation", "channel_data", "kind", "tenant"),
    [
        ({"id": "a:1", "conversationType": "personal"}, {"tenant": {"id": "t1"}}, ConversationType.PERSONAL, "t1"),
        ({"id": "19:g@thread.v2", "isGroup": True}, {"tenant": {"id": "t2"}}, ConversationType.GROUP_CHAT, "t2"),
        ({"id": "19:c@thread.tacv2;messageid=5", "conversationType": "channel", "tenantId": "t3"},
         {"channel": {"id": "19:c@thread.tacv2"}}, ConversationType.CHANNEL, "t3"),
    ],
)
def test_conversation_kind_and_tenant(conversation: dict[str, Any], channel_data: dict[str, Any],
                                      kind: ConversationType, tenant: str) -> None:
    """The tenant comes from channelData.tenant.id (else conversation.tenantId); the kind from the conversation."""
    conv = wire.conversation({"conversation": conversation, "channelData": channel_data})
    assert (conv.type, conv.tenant_id) == (kind, tenant)


def test_channel_thread_ids() -> None:
    """A channel thread id splits into the channel and the root message."""
    conv = wire.conversation({"conversation": {"id": "19:c@thread.tacv2;messageid=42"},
                              "channelData": {"channel": {"id": "19:c@thread.tacv2"}}})
    assert (conv.base_id, conv.thread_root) == ("19:c@thread.tacv2", "42")


def test_bad_activity_is_a_clear_error() -> None:
    """An activity without a conversation raises BadActivity, the bot's documented error."""
    with pytest.raises(wire.BadActivity):
        wire.message({"type": "message", "id": "1"})


@pytest.mark.parametrize(("text", "limit", "expected"),
                         [("a  b\n c", 10, "a b c"), ("abcdef", 4, "abc…"), ("anything", 0, "")])
def test_snippet(text: str, limit: int, expected: str) -> None:
    """The snippet keeps the first N characters (whitespace collapsed); 0 keeps none."""
    assert snippet_of(text, limit) == expected


def test_graph_shape_and_deep_link() -> None:
    """Evidence exports Graph teamsMessageEvidence names and a Teams deep link to the message."""
    from datetime import UTC, datetime

    ev = TeamsMessageEvidence(conversation_id="19:c@thread.tacv2", message_id="42", thread_id="19:c@thread.tacv2",
                              thread_type="Topic", thread_sub_type="channel",
                              received_at=datetime(2026, 1, 1, tzinfo=UTC),
                              urls=("https://a.example/",), tenant_id="t", team_id="19:team", sender_upn="a@b.example",
                              sender_name="A", parent_message_id="42")
    graph = ev.to_graph()
    assert graph["@odata.type"] == "#microsoft.graph.security.teamsMessageEvidence"
    assert (graph["messageId"], graph["threadType"], graph["groupId"], graph["owningTenantId"]) == (
        "42", "Topic", "19:team", "t")
    assert graph["senderFromAddress"]["emailAddress"] == "a@b.example"
    assert graph["safelinksWebUrl"].startswith("https://teams.microsoft.com/l/message/19%3Ac%40thread.tacv2/42?")


def test_card_hosts_are_plain_ascii() -> None:
    """Look-alike hosts are shown in punycode, with the verdict badge next to them."""
    assert host_of("https://\u0430pple.example/") == "xn--pple-43d.example"  # a Cyrillic a
    card = reply_card([CardLink("https://bad.example/", "https://w/1", Verdict.MALICIOUS)])
    assert card["version"] == "1.5" and "Malicious" in str(card) and card["body"][0]["color"] == "Attention"


async def test_large_messages_are_read_off_the_event_loop() -> None:
    """A message longer than INLINE_CHARACTERS is read in a worker thread; a short one on the event loop."""
    loop_thread = threading.get_ident()
    seen: list[int] = []

    def ours(url: str) -> bool:
        seen.append(threading.get_ident())
        return _ours(url)

    small = wire.message(_message("see https://a.example/x"))
    big = wire.message(_message("see https://a.example/x " + "<a " * INLINE_CHARACTERS, "xml"))
    assert await links_of(small, is_ours=ours) == ["https://a.example/x"]
    assert seen and set(seen) == {loop_thread}
    seen.clear()
    assert await links_of(big, is_ours=ours) == ["https://a.example/x"]
    assert seen and loop_thread not in seen


@pytest.mark.parametrize(
    ("target", "shown"),
    [
        ("http://evil.example\\@good.example/", "evil.example"),
        ("http://%62locked.example/", "blocked.example"),
        ("http://0x5db8d822/", "93.184.216.34"),
        ("http://straße-login.example/", "xn--strae-login-y6a.example"),
        ("not a url", "not a url"),
    ],
)
def test_card_shows_the_host_the_browser_opens(target: str, shown: str) -> None:
    """The reply card names the host a click really opens, in ASCII, whatever '\\@', escapes or IPv4 spelling say."""
    assert host_of(target) == shown
