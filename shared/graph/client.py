"""The Graph calls teams-safelinks makes: set or clear a Teams message's ``policyViolation``, and
read and install Teams apps (``shared.coverage``).

``PATCH /chats/{chat}/messages/{id}``, ``/teams/{group}/channels/{channel}/messages/{id}`` or
``.../messages/{root}/replies/{id}`` with ``{"policyViolation": …}``; with application permissions
that property is the only one that may change. ``get``, ``page`` and ``post`` serve the rest: a
collection is read page by page through ``@odata.nextLink``, which is followed only while it stays
under the configured base URL (the token must never go elsewhere). The HTTP session is injectable
(a transport), and the base URL and token endpoint are settings, so tests talk to a local stand-in.
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


def segment(value: str) -> str:
    """An id as one path segment: it can never add segments, a query or a fragment."""
    return quote(value, safe=_SEGMENT_SAFE)


@dataclass(frozen=True, slots=True)
class MessageRef:
    """Where a Teams message lives, in Graph's terms. ``team_id`` is the team's AAD group id."""

    message_id: str
    chat_id: str | None = None
    team_id: str | None = None
    channel_id: str | None = None
    root_id: str | None = None  # the thread's root, for a reply in a channel

    def path(self) -> str:
        q = segment
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
        params = {"model": self.model} if self.model else None
        return await self._send("PATCH", self.base_url + ref.path(), params=params, body=body)

    async def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """GET ``path`` (under the base URL); the answer's JSON object."""
        return await self._send("GET", self.base_url + path, params=params)

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``path``; what Graph answered (``{}`` when it answered without a body)."""
        return await self._send("POST", self.base_url + path, body=body)

    async def page(self, path: str, params: dict[str, str] | None = None, *, link: str | None = None
                   ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of a collection: its items and the ``@odata.nextLink`` to the next (None at the end).

        Pass that link back as ``link`` (``path`` and ``params`` are then ignored): it carries its own query.
        """
        if link is not None and not link.startswith(self.base_url + "/"):
            raise GraphRefused(f"Graph's next-page link leaves {self.base_url}: {link[:200]}")
        answer = await self._send("GET", link or self.base_url + path, params=None if link else params)
        value = answer.get("value")
        items = [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
        following = answer.get("@odata.nextLink")
        return items, following if isinstance(following, str) and following else None

    async def _send(self, method: str, url: str, *, params: dict[str, str] | None = None,
                    body: dict[str, Any] | None = None) -> dict[str, Any]:
        session = self._http()
        token = await self.credentials.token(session)
        headers = {"Authorization": f"Bearer {token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with session.request(method, url, json=body, params=params, headers=headers) as response:
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
