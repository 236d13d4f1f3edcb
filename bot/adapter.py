"""The only module that imports the Bot Framework SDK (botbuilder 4.17.1).

It turns SDK activities into ``bot.activity`` types and hands them to a ``BotLogic``; it sends
through the SDK for a ``TeamsConnector``. Three SDK defects are handled here:

* ``CloudAdapter.process`` serialises invoke response bodies twice, so every ``adaptiveCard/action``
  answers HTTP 500; ``BotFrameworkAdapter.handle`` replaces it and writes each body once.
* Rejected tokens come back as 500 (raw JWT errors, or an AttributeError for a missing header on
  the parameterized path); authentication runs on its own here and every failure answers 401.
* MSAL refuses non-https authorities, so a local test channel (``to_channel_from_bot_login_url``
  over http) gets a plain OAuth2 client-credentials token instead.

Trust (see ``bot.trust``): an activity is read with a bounded JSON depth, authenticated, then
refused with 403 when its tenant is not configured or its ``serviceUrl`` is not an endpoint the bot
may call; every outgoing call checks the stored ``serviceUrl`` again through ``shared.netguard``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
import requests
from aiohttp import web
from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.core.teams import TeamsActivityHandler, TeamsInfo
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
    ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import Activity, ActivityTypes, ConversationAccount, ConversationReference
from botbuilder.schema import Attachment as SdkAttachment
from botframework.connector.auth import AppCredentials, AuthenticationConstants, ServiceClientCredentialsFactory
from msrest.authentication import Authentication
from msrest.exceptions import HttpOperationError

from bot import trust, wire
from bot.activity import Member
from bot.contracts import CARD_CONTENT_TYPE, BotLogic, Posted
from bot.errors import BadActivity, ChannelError
from shared.config import Settings
from shared.jsonbody import JSONBodyError, loads
from shared.netguard import BlockedEndpoint, ResolutionFailed, check_endpoint, endpoint_base
from shared.retry_after import parse_retry_after

log = logging.getLogger("safelinks.bot")
T = TypeVar("T")
_TOKEN_PATH = "/oauth2/v2.0/token"


class _SdkConfig:
    """The attribute names ``ConfigurationBotFrameworkAuthentication`` reads."""

    def __init__(self, settings: Settings) -> None:
        self.APP_ID = settings.microsoft_app_id
        self.APP_PASSWORD = settings.microsoft_app_password.get_secret_value()
        # Without an app id the SDK's auth-disabled path is its MultiTenant one (SingleTenant demands an id).
        self.APP_TYPE = settings.microsoft_app_type if settings.microsoft_app_id else "MultiTenant"
        self.APP_TENANTID = settings.microsoft_app_tenant_id
        configured = {
            "TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL": settings.to_bot_from_channel_openid_metadata_url,
            "TO_BOT_FROM_CHANNEL_TOKEN_ISSUER": settings.to_bot_from_channel_token_issuer,
            "TO_CHANNEL_FROM_BOT_LOGIN_URL": settings.to_channel_from_bot_login_url,
            "TO_CHANNEL_FROM_BOT_OAUTH_SCOPE": settings.to_channel_from_bot_oauth_scope,
            "OAUTH_URL": settings.oauth_url,
        }
        if any(configured.values()):
            # Any one endpoint switches the SDK to its parameterized path, which needs all of them:
            # the ones left out keep the public cloud's values.
            tenant = settings.microsoft_app_tenant_id if settings.microsoft_app_type != "MultiTenant" else ""
            defaults = {
                "TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL":
                    AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL,
                "TO_BOT_FROM_CHANNEL_TOKEN_ISSUER": AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER,
                "TO_CHANNEL_FROM_BOT_LOGIN_URL": AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX
                + (tenant or AuthenticationConstants.DEFAULT_CHANNEL_AUTH_TENANT),
                "TO_CHANNEL_FROM_BOT_OAUTH_SCOPE": AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE,
                "OAUTH_URL": AuthenticationConstants.OAUTH_URL,
            }
            for name, value in configured.items():
                setattr(self, name, value or defaults[name])
            self.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL = (
                AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL)


class _ClientCredentials(AppCredentials):
    """OAuth2 client credentials from a plain-http token endpoint (a local test channel)."""

    def __init__(self, app_id: str, password: str, scope: str, token_url: str) -> None:
        super().__init__(app_id=app_id, oauth_scope=scope)
        self._password = password
        self._token_url = token_url
        self._token = ""
        self._expires = 0.0
        self._lock = threading.Lock()

    def get_access_token(self, force_refresh: bool = False) -> str:
        with self._lock:
            if self._token and not force_refresh and time.time() < self._expires - 60:
                return self._token
            scope = self.oauth_scope if self.oauth_scope.endswith("/.default") else self.oauth_scope + "/.default"
            try:
                answer = requests.post(self._token_url, timeout=10, data={
                    "grant_type": "client_credentials", "client_id": self.microsoft_app_id,
                    "client_secret": self._password, "scope": scope,
                })
                body = answer.json()
            except (requests.RequestException, ValueError) as exc:
                raise PermissionError(f"token endpoint {self._token_url}: {exc}") from exc
            if answer.status_code != 200 or "access_token" not in body:
                refused = body.get("error", answer.status_code) if isinstance(body, dict) else answer.status_code
                raise PermissionError(f"token endpoint {self._token_url} refused: {refused}")
            self._token = str(body["access_token"])
            self._expires = time.time() + float(body.get("expires_in", 3600))
            return self._token


class _CredentialsFactory(ServiceClientCredentialsFactory):
    """The SDK's own factory, except for http login endpoints (MSAL accepts https only)."""

    def __init__(self, config: _SdkConfig) -> None:
        self._inner = ConfigurationServiceClientCredentialFactory(config)
        self._app_id = config.APP_ID
        self._password = config.APP_PASSWORD
        self._plain: dict[tuple[str, str], _ClientCredentials] = {}

    async def is_valid_app_id(self, app_id: str) -> bool:
        return bool(await self._inner.is_valid_app_id(app_id))

    async def is_authentication_disabled(self) -> bool:
        return bool(await self._inner.is_authentication_disabled())

    async def create_credentials(self, app_id: str, oauth_scope: str, login_endpoint: str,
                                 validate_authority: bool) -> Authentication:
        if login_endpoint and login_endpoint.lower().startswith("http://") and self._app_id:
            if app_id != self._app_id:
                raise PermissionError("Invalid app_id")
            key = (oauth_scope, login_endpoint)
            if key not in self._plain:
                self._plain[key] = _ClientCredentials(app_id, self._password, oauth_scope,
                                                      login_endpoint.rstrip("/") + _TOKEN_PATH)
            return self._plain[key]
        return await self._inner.create_credentials(app_id, oauth_scope, login_endpoint, validate_authority)


_RAW = "_safelinks_wire_json"


def _json(activity: Activity) -> dict[str, Any]:
    """The activity as Teams sent it: the SDK's serialize() drops mention details and conversation.tenantId."""
    raw = getattr(activity, _RAW, None)
    if isinstance(raw, dict):
        return raw
    raw = activity.serialize()
    return raw if isinstance(raw, dict) else {}


class _TeamsHandler(TeamsActivityHandler):
    """Routes Teams activities to our logic, converted to our own types."""

    def __init__(self, logic: BotLogic, *, claims_trusted: bool = True) -> None:
        self._logic = logic
        self._claims_trusted = claims_trusted

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        await self._logic.on_message(wire.message(_json(turn_context.activity)))

    async def on_teams_message_edit(self, turn_context: TurnContext) -> None:
        await self._logic.on_message_edit(wire.message(_json(turn_context.activity)))

    async def on_teams_message_undelete(self, turn_context: TurnContext) -> None:
        await self._logic.on_message_undelete(wire.message(_json(turn_context.activity)))

    async def on_teams_message_soft_delete(self, turn_context: TurnContext) -> None:
        await self._logic.on_message_delete(wire.message(_json(turn_context.activity)))

    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        await self._logic.on_installation(wire.installation(_json(turn_context.activity), added=True))

    async def on_installation_update_remove(self, turn_context: TurnContext) -> None:
        await self._logic.on_installation(wire.installation(_json(turn_context.activity), added=False))

    async def on_teams_members_added(self, teams_members_added: Any, team_info: Any,
                                     turn_context: TurnContext) -> None:
        bot_id = turn_context.activity.recipient.id if turn_context.activity.recipient else None
        if any(m.id == bot_id for m in teams_members_added or ()):
            await self._logic.on_installation(wire.installation(_json(turn_context.activity), added=True))

    async def on_teams_members_removed(self, teams_members_removed: Any, team_info: Any,
                                       turn_context: TurnContext) -> None:
        bot_id = turn_context.activity.recipient.id if turn_context.activity.recipient else None
        if any(m.id == bot_id for m in teams_members_removed or ()):
            await self._logic.on_installation(wire.installation(_json(turn_context.activity), added=False))

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        if turn_context.activity.name == "adaptiveCard/action":
            if not self._claims_trusted:
                # Who pressed the button and where are the activity's unverified word in this mode.
                return InvokeResponse(status=200, body={
                    "statusCode": 403, "type": "application/vnd.microsoft.error",
                    "value": {"code": "Forbidden",
                              "message": "card actions need an authenticated bot (MicrosoftAppId)"}})
            try:
                action = wire.card_action(_json(turn_context.activity))
            except BadActivity as exc:
                return InvokeResponse(status=200, body={
                    "statusCode": 400, "type": "application/vnd.microsoft.error",
                    "value": {"code": "BadRequest", "message": str(exc)}})
            result = await self._logic.on_card_action(action)
            # A plain dict body: BotFrameworkAdapter.handle writes it as it is (serialised once).
            return InvokeResponse(status=200, body=result.body())
        if turn_context.activity.name == "composeExtension/submitAction":
            try:
                message_action = wire.message_action(_json(turn_context.activity))
            except BadActivity as exc:
                return InvokeResponse(status=400, body={"error": {"code": "BadRequest", "message": str(exc)}})
            reply = await self._logic.on_message_action(message_action)
            return InvokeResponse(status=200, body=reply.body())
        return await super().on_invoke_activity(turn_context)


def _channel_error(exc: BaseException) -> ChannelError:
    if isinstance(exc, HttpOperationError):
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
        status = int(getattr(response, "status_code", 0) or 0)
        return ChannelError(f"connector answered {status}: {exc}", status=status,
                            retry_after=parse_retry_after(headers.get("Retry-After") if headers else None))
    if isinstance(exc, PermissionError):
        return ChannelError(f"no token for the connector: {exc}", status=401)
    return ChannelError(f"connector unreachable: {type(exc).__name__}: {exc}", status=0)


def _member(account: Any) -> Member:
    raw = account.serialize() if hasattr(account, "serialize") else {}
    raw.update(getattr(account, "additional_properties", None) or {})
    return Member(
        id=str(raw.get("id") or ""),
        aad_object_id=raw.get("aadObjectId") or raw.get("objectId"),
        name=str(raw.get("name") or ""),
        upn=raw.get("userPrincipalName"),
        email=raw.get("email"),
        tenant_id=raw.get("tenantId"),
    )


def _outgoing(card: dict[str, Any] | None, text: str | None) -> Activity:
    attachments = [SdkAttachment(content_type=CARD_CONTENT_TYPE, content=card)] if card is not None else None
    return Activity(type=ActivityTypes.message, text=text, attachments=attachments)


class BotFrameworkAdapter:
    """The SDK's CloudAdapter behind our two seams: an aiohttp handler in, a TeamsConnector out."""

    def __init__(self, settings: Settings, logic: BotLogic | None = None) -> None:
        config = _SdkConfig(settings)
        self.app_id = settings.microsoft_app_id
        self.authenticated = bool(self.app_id)
        self._settings = settings
        self._claims_trusted = trust.claims_trusted(settings)
        # Loopback connectors (the Agents Playground, a local stand-in) only while nothing else can reach us.
        self._loopback_ok = trust.mode(settings) == "local"
        self._auth = ConfigurationBotFrameworkAuthentication(config, credentials_factory=_CredentialsFactory(config))
        self._cloud = CloudAdapter(self._auth)
        self._handler = _TeamsHandler(logic, claims_trusted=self._claims_trusted) if logic is not None else None

    def attach(self, logic: BotLogic) -> None:
        self._handler = _TeamsHandler(logic, claims_trusted=self._claims_trusted)

    def _refusal(self, body: dict[str, Any]) -> str | None:
        """Why an authenticated activity is refused (its tenant, its serviceUrl), or None."""
        try:
            tenant = wire.conversation(body).tenant_id
        except BadActivity:
            tenant = None
        if not trust.tenant_allowed(self._settings, tenant):
            return f"tenant {str(tenant)[:64]!r} is not configured (SAFELINKS_TENANT_IDS)"
        service_url = body.get("serviceUrl")
        if not isinstance(service_url, str) or endpoint_base(
                service_url, self._settings.bot_service_urls, allow_loopback=self._loopback_ok) is None:
            return f"serviceUrl {str(service_url)[:120]!r} is not a permitted endpoint (SAFELINKS_BOT_SERVICE_URLS)"
        return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/messages``."""
        if self._handler is None:
            raise web.HTTPServiceUnavailable(text="the bot is starting")
        if request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="activities are application/json")
        try:
            body = loads(await request.read())
        except JSONBodyError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            raise web.HTTPBadRequest(text="the body is not an activity")
        try:
            activity = Activity().deserialize(body)
        except Exception:  # msrest raises several types for a malformed field
            raise web.HTTPBadRequest(text="the activity is malformed") from None
        setattr(activity, _RAW, body)
        try:
            # None, not "", for a missing header: the SDK's parameterized path treats "" as a token to check.
            auth = await self._auth.authenticate_request(activity, request.headers.get("Authorization") or None)
        except PermissionError as exc:  # the SDK's own "not authorized" (an OSError, so caught first)
            log.info("rejected an activity: %s", exc)
            raise web.HTTPUnauthorized(text="unauthorized") from None
        except (requests.RequestException, aiohttp.ClientError, OSError) as exc:
            log.warning("cannot check the token: the channel's keys are unreachable: %s", exc)
            raise web.HTTPServiceUnavailable(text="cannot check the token now") from None
        except Exception as exc:  # every rejection (JWT errors, PermissionError, a missing header)
            log.info("rejected an activity: %s: %s", type(exc).__name__, exc)
            raise web.HTTPUnauthorized(text="unauthorized") from None
        refused = self._refusal(body)
        if refused is not None:
            log.warning("refused an activity from %s: %s", request.remote, refused)
            raise web.HTTPForbidden(text=refused)
        try:
            response = await self._cloud.process_activity(auth, activity, self._handler.on_turn)
        except BadActivity as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        if response is None:
            return web.Response(status=201)
        payload = response.body
        if payload is not None and not isinstance(payload, dict | list | str | int | float | bool):
            payload = payload.serialize()
        return web.Response(status=response.status, content_type="application/json",
                            text=json.dumps(payload) if payload is not None else "")

    async def _continue(self, reference: dict[str, Any], work: Callable[[TurnContext, Any], Awaitable[T]]) -> T:
        ref = ConversationReference().deserialize(reference)
        if not ref.service_url or not ref.conversation:
            raise ChannelError("the stored conversation reference is incomplete", status=400)
        try:
            # Checked on every call, not only on arrival: a reference stored before may point anywhere.
            await check_endpoint(ref.service_url, self._settings.bot_service_urls, allow_loopback=self._loopback_ok)
        except BlockedEndpoint as exc:
            raise ChannelError(f"not calling the connector: {exc}", status=403) from None
        except ResolutionFailed as exc:
            raise ChannelError(f"connector unreachable: {exc}", status=0) from None
        done: list[T] = []

        async def callback(turn_context: TurnContext) -> None:
            client = turn_context.turn_state.get(self._cloud.BOT_CONNECTOR_CLIENT_KEY)
            done.append(await work(turn_context, client))

        bot_app_id = self.app_id or (ref.bot.id if ref.bot else "")
        try:
            await self._cloud.continue_conversation(ref, callback, bot_app_id)
        except ChannelError:
            raise
        except (TimeoutError, HttpOperationError, PermissionError, aiohttp.ClientError, OSError) as exc:
            raise _channel_error(exc) from exc
        return done[0]

    async def send(self, reference: dict[str, Any], *, conversation_id: str, card: dict[str, Any] | None,
                   text: str | None, reply_to_id: str | None) -> Posted:
        async def work(_: TurnContext, client: Any) -> Posted:
            activity = _outgoing(card, text)
            activity.conversation = ConversationAccount(id=conversation_id)
            if reply_to_id:
                activity.reply_to_id = reply_to_id
                answer = await client.conversations.reply_to_activity(conversation_id, reply_to_id, activity)
            else:
                answer = await client.conversations.send_to_conversation(conversation_id, activity)
            return Posted(conversation_id, str(getattr(answer, "id", "") or ""))

        return await self._continue(reference, work)

    async def update(self, reference: dict[str, Any], *, conversation_id: str, activity_id: str,
                     card: dict[str, Any] | None, text: str | None) -> None:
        async def work(_: TurnContext, client: Any) -> None:
            activity = _outgoing(card, text)
            activity.id = activity_id
            activity.conversation = ConversationAccount(id=conversation_id)
            await client.conversations.update_activity(conversation_id, activity_id, activity)

        await self._continue(reference, work)

    async def new_thread(self, reference: dict[str, Any], *, channel_id: str, card: dict[str, Any] | None,
                         text: str | None) -> Posted:
        bot_app_id = self.app_id or str((reference.get("bot") or {}).get("id") or "")

        async def work(turn_context: TurnContext, _: Any) -> Posted:
            # bot_app_id must be given by keyword: without it the SDK takes a legacy path CloudAdapter lacks.
            ref, activity_id = await TeamsInfo.send_message_to_teams_channel(
                turn_context, _outgoing(card, text), channel_id, bot_app_id=bot_app_id)
            return Posted(ref.conversation.id, str(activity_id or ""))

        return await self._continue(reference, work)

    async def member(self, reference: dict[str, Any], *, conversation_id: str, user_id: str) -> Member | None:
        async def work(_: TurnContext, client: Any) -> Member | None:
            try:
                return _member(await client.conversations.get_conversation_member(conversation_id, user_id))
            except HttpOperationError as exc:
                if getattr(getattr(exc, "response", None), "status_code", 0) == 404:
                    return None
                raise

        return await self._continue(reference, work)

    async def members(self, reference: dict[str, Any], *, conversation_id: str, limit: int) -> list[Member] | None:
        async def work(_: TurnContext, client: Any) -> list[Member] | None:
            page = await client.conversations.get_conversation_paged_members(conversation_id, max(limit + 1, 50))
            found = [_member(m) for m in page.members or ()]
            if page.continuation_token or len(found) > limit:
                return None
            return found

        return await self._continue(reference, work)
