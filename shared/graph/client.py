"""The Graph calls teams-safelinks makes: set or clear a Teams message's ``policyViolation``.

``PATCH /chats/{chat}/messages/{id}``, ``/teams/{group}/channels/{channel}/messages/{id}`` or
``.../messages/{root}/replies/{id}`` with ``{"policyViolation": …}``; with application permissions
that property is the only one that may change. The HTTP session is injectable (a transport), and
the base URL and token endpoint are settings, so tests talk to a local stand-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import aiohttp

from shared.graph.errors import GraphRefused, GraphUnavailable, retry_after_seconds
from shared.graph.token import ClientCredentials

DlpAction = Literal["BlockAccess", "None"]
_SEGMENT_SAFE = ":@"  # Teams ids hold ':' and '@'; '/', '?' and '#' must never reach the path raw


@dataclass(frozen=True, slots=True)
class MessageRef:
    """Where a Teams message lives, in Graph's terms. ``team_id`` is the team's AAD group id."""

    message_id: str
    chat_id: str | None = None
    team_id: str | None = None
    channel_id: str | None = None
    root_id: str | None = None  # the thread's root, for a reply in a channel

    def path(self) -> str:
        def q(segment: str) -> str:
            return quote(segment, safe=_SEGMENT_SAFE)

        if self.chat_id:
            return f"/chats/{q(self.chat_id)}/messages/{q(self.message_id)}"
        if not self.team_id or not self.channel_id:
            raise GraphRefused("a channel message needs the team's AAD group id and the channel id")
        base = f"/teams/{q(self.team_id)}/channels/{q(self.channel_id)}/messages"
        if self.root_id and self.root_id != self.message_id:
            return f"{base}/{q(self.root_id)}/replies/{q(self.message_id)}"
        return f"{base}/{q(self.message_id)}"

    def to_json(self) -> dict[str, str]:
        found = {"messageId": self.message_id, "chatId": self.chat_id, "teamId": self.team_id,
                 "channelId": self.channel_id, "rootId": self.root_id}
        return {k: v for k, v in found.items() if v}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MessageRef:
        return cls(message_id=str(data["messageId"]), chat_id=data.get("chatId"), team_id=data.get("teamId"),
                   channel_id=data.get("channelId"), root_id=data.get("rootId"))


def policy_violation(action: DlpAction, *, tip: str = "", explanation_url: str = "",
                     conditions: list[str] | None = None) -> dict[str, Any]:
    """The PATCH body: block the message for its readers (the sender may dispute it), or clear the block."""
    if action == "None":
        return {"policyViolation": {"dlpAction": "None", "verdictDetails": "None"}}
    policy_tip: dict[str, Any] = {"generalText": tip[:1000]}
    if explanation_url:
        policy_tip["complianceUrl"] = explanation_url
    if conditions:
        policy_tip["matchedConditionDescriptions"] = [c[:200] for c in conditions[:10]]
    return {"policyViolation": {"dlpAction": "BlockAccess", "verdictDetails": "AllowFalsePositiveOverride",
                                "policyTip": policy_tip}}


class GraphClient:
    """App-only Graph calls through ``session`` (made here, and closed by ``close``, when not given)."""

    def __init__(self, base_url: str, credentials: ClientCredentials, *, model: str = "",
                 session: aiohttp.ClientSession | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.model = model
        self._session = session
        self._own = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            self._own = True
        return self._session

    async def close(self) -> None:
        if self._own and self._session is not None:
            await self._session.close()
            self._session = None

    async def set_policy_violation(self, ref: MessageRef, body: dict[str, Any]) -> dict[str, Any]:
        """PATCH the message; return what Graph answered (the message, or ``{}`` on 204)."""
        session = self._http()
        token = await self.credentials.token(session)
        url = self.base_url + ref.path()
        params = {"model": self.model} if self.model else None
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        try:
            async with session.patch(url, json=body, params=params, headers=headers) as response:
                status = response.status
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                try:
                    answer = await response.json(content_type=None)
                except ValueError:
                    answer = None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GraphUnavailable(f"Graph unreachable: {type(exc).__name__}: {exc}") from exc
        if 200 <= status < 300:
            return answer if isinstance(answer, dict) else {}
        error = answer.get("error") if isinstance(answer, dict) else None
        code = str(error.get("code") or "") if isinstance(error, dict) else ""
        text = str(error.get("message") or "")[:300] if isinstance(error, dict) else ""
        message = f"Graph answered {status}" + (f" {code}" if code else "") + (f": {text}" if text else "")
        if status == 401:
            self.credentials.forget()  # a revoked or rotated token: fetch a new one next time
            raise GraphUnavailable(message, status=status, code=code, retry_after=wait)
        if status in (408, 409, 412, 429) or status >= 500:
            raise GraphUnavailable(message, status=status, code=code, retry_after=wait)
        raise GraphRefused(message, status=status, code=code)


def scope_for(base_url: str) -> str:
    """The app-only scope for a Graph base URL: its origin with ``/.default``."""
    scheme, _, rest = base_url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/.default"
