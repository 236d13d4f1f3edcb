"""Reading Bot Framework activity JSON (the wire format Teams sends) into our own types.

The JSON is read as Teams sends it, so the tenant comes from ``channelData.tenant.id`` (the
Python SDK's ``conversation.tenant_id`` is never filled: it expects ``tenantID``), the team and
channel from ``channelData.team`` / ``channelData.channel``, edits and deletions from
``channelData.eventType``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.activity import (
    Account,
    Attachment,
    CardAction,
    Conversation,
    ConversationType,
    IncomingMessage,
    Installation,
    Mention,
    MessageAction,
)
from bot.errors import BadActivity

JSON = dict[str, Any]


def _dict(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def account(raw: Any) -> Account:
    data = _dict(raw)
    return Account(
        id=str(data.get("id") or ""),
        name=str(data.get("name") or ""),
        aad_object_id=_str(data.get("aadObjectId")),
        role=_str(data.get("role")),
    )


def conversation(activity: JSON) -> Conversation:
    conv = _dict(activity.get("conversation"))
    conv_id = _str(conv.get("id"))
    if conv_id is None:
        raise BadActivity("the activity has no conversation id")
    channel_data = _dict(activity.get("channelData"))
    team = _dict(channel_data.get("team"))
    channel = _dict(channel_data.get("channel"))
    tenant = _str(_dict(channel_data.get("tenant")).get("id")) or _str(conv.get("tenantId"))
    kind = ConversationType.parse(
        _str(conv.get("conversationType")),
        is_group=bool(conv.get("isGroup")),
        in_channel=bool(channel.get("id")),
    )
    return Conversation(
        id=conv_id,
        type=kind,
        tenant_id=tenant,
        team_id=_str(team.get("id")) or _str(channel_data.get("teamsTeamId")),
        team_name=_str(team.get("name")),
        channel_id=_str(channel.get("id")) or _str(channel_data.get("teamsChannelId")),
        channel_name=_str(channel.get("name")),
        name=_str(conv.get("name")),
        team_aad_group_id=_str(team.get("aadGroupId")),
    )


def reference(activity: JSON) -> JSON:
    """The conversation reference (Bot Framework ``ConversationReference`` JSON) to answer later."""
    ref: JSON = {
        "activityId": activity.get("id"),
        "user": activity.get("from"),
        "bot": activity.get("recipient"),
        "conversation": activity.get("conversation"),
        "channelId": activity.get("channelId"),
        "serviceUrl": activity.get("serviceUrl"),
    }
    if activity.get("locale"):
        ref["locale"] = activity["locale"]
    return {k: v for k, v in ref.items() if v is not None}


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _mentions(activity: JSON) -> tuple[Mention, ...]:
    found = []
    for entity in activity.get("entities") or ():
        entity = _dict(entity)
        if str(entity.get("type", "")).lower() != "mention":
            continue
        mentioned = _dict(entity.get("mentioned"))
        if mentioned.get("id"):
            found.append(Mention(str(mentioned["id"]), str(mentioned.get("name") or ""), str(entity.get("text") or "")))
    return tuple(found)


def _attachments(activity: JSON) -> tuple[Attachment, ...]:
    found = []
    for item in activity.get("attachments") or ():
        item = _dict(item)
        content_type = _str(item.get("contentType"))
        if content_type:
            found.append(Attachment(content_type, item.get("content"), _str(item.get("contentUrl")),
                                    _str(item.get("name"))))
    return tuple(found)


def message(activity: JSON) -> IncomingMessage:
    """A ``message``, ``messageUpdate`` or ``messageDelete`` activity."""
    msg_id = _str(activity.get("id"))
    if msg_id is None:
        raise BadActivity("the message has no id")
    value = activity.get("value")
    return IncomingMessage(
        id=msg_id,
        conversation=conversation(activity),
        sender=account(activity.get("from")),
        bot=account(activity.get("recipient")),
        text=str(activity.get("text") or ""),
        text_format=str(activity.get("textFormat") or "plain").lower(),
        attachments=_attachments(activity),
        mentions=_mentions(activity),
        reply_to_id=_str(activity.get("replyToId")),
        timestamp=_timestamp(activity.get("timestamp")) or _timestamp(activity.get("localTimestamp")),
        service_url=str(activity.get("serviceUrl") or ""),
        channel=str(activity.get("channelId") or ""),
        event_type=_str(_dict(activity.get("channelData")).get("eventType")),
        value=value if isinstance(value, dict) else None,
        reference=reference(activity),
    )


def card_action(activity: JSON) -> CardAction:
    """An ``adaptiveCard/action`` invoke."""
    value = _dict(activity.get("value"))
    action = _dict(value.get("action"))
    verb = _str(action.get("verb"))
    if verb is None:
        raise BadActivity("the card action has no verb")
    sender = account(activity.get("from"))
    conv = conversation(activity)
    return CardAction(
        verb=verb,
        data=_dict(action.get("data")),
        user_aad_id=sender.aad_object_id,
        user_name=sender.name,
        conversation_id=conv.id,
        activity_id=_str(activity.get("replyToId")),
        user_id=sender.id,
        trigger=str(value.get("trigger") or "manual"),
        tenant_id=conv.tenant_id,
        conversation_type=conv.type,
    )


def installation(activity: JSON, *, added: bool) -> Installation:
    return Installation(
        conversation=conversation(activity),
        added=added,
        actor=account(activity.get("from")) if activity.get("from") else None,
        bot=account(activity.get("recipient")),
        reference=reference(activity),
    )


def message_action(activity: JSON) -> MessageAction:
    """A ``composeExtension/submitAction`` invoke run on a message (``commandContext: "message"``)."""
    value = _dict(activity.get("value"))
    command = _str(value.get("commandId"))
    if command is None:
        raise BadActivity("the message action has no commandId")
    payload = _dict(value.get("messagePayload"))
    message_id = _str(payload.get("id"))
    if message_id is None:
        raise BadActivity("the message action has no messagePayload.id")
    body = _dict(payload.get("body"))
    author = _dict(_dict(payload.get("from")).get("user"))
    data = value.get("data")
    return MessageAction(
        command_id=command,
        user=account(activity.get("from")),
        conversation=conversation(activity),
        message_id=message_id,
        message_text=str(body.get("content") or "")[:100_000],
        message_format="html" if str(body.get("contentType") or "").lower() == "html" else "plain",
        sender_aad_object_id=_str(author.get("id")),
        sender_name=str(author.get("displayName") or ""),
        reply_to_id=_str(payload.get("replyToId")),
        created=_timestamp(payload.get("createdDateTime")),
        link_to_message=_str(payload.get("linkToMessage")),
        data=data if isinstance(data, dict) else {},
        reference=reference(activity),
    )
