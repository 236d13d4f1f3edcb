"""Wiring quarantine and message reports into the application: Graph, the outbox kind, buttons, API, page.

The worker roles deliver kind ``graph`` (the Graph calls) and run the verdict-change look-back (one
replica at a time). Every role that takes requests can ask for a hide or release: the request is
a row and an outbox item, delivered by whichever worker claims it. When a record settles, the
alerts raised on its message get a comment and their incident's card is re-posted showing it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from bot.activity import CardAction
from bot.app import CARD_ACTIONS, HANDLING, TEAMS_OUTBOX
from bot.errors import BotError
from safelinks.alerting import ALERT_OUTBOX, alerting_for
from safelinks.api import ALERTING
from shared.alerts.actions import Actor, Changes
from shared.alerts.errors import AlertError
from shared.alerts.model import Alert
from shared.alerts.rules import RuleSet
from shared.alerts.system import Alerting
from shared.config import Settings
from shared.events import VerdictChanged
from shared.graph import ClientCredentials, GraphClient, GraphError, scope_for
from shared.graph.token import Certificate
from shared.outbox import Outbox
from shared.quarantine import Cause, JudgedLink, Mode, QuarantineError, QuarantineOutcome, QuarantineRecord, State
from shared.quarantine.cards import HIDE_VERB, RELEASE_VERB, REPORTED_RULE
from shared.quarantine.service import KIND, Quarantine
from shared.reports import ReportDesk, report_rule
from shared.services import SERVICES, Services
from shared.store.alerts import AlertStore
from shared.store.leader import lead_forever
from shared.store.messages import EvidenceStore
from shared.tasks import stop_tasks

log = logging.getLogger("safelinks.quarantine")
QUARANTINE: web.AppKey[Quarantine] = web.AppKey("quarantine", Quarantine)


class QuarantineRefused(BotError):
    """A Hide or Release button could not be honoured; the text says why."""


def graph_client(settings: Settings, *, session: Any = None) -> GraphClient:
    """The Graph client the settings describe (credentials default to the bot's)."""
    certificate = Certificate.load(settings.graph_client_certificate) if settings.graph_client_certificate else None
    credentials = ClientCredentials(settings.graph_token_endpoint, settings.graph_client,
                                    scope=scope_for(settings.graph_url), secret=settings.graph_secret,
                                    certificate=certificate)
    return GraphClient(settings.graph_url, credentials, model=settings.graph_model, session=session,
                       timeout=settings.graph_timeout)


def graph_problems(settings: Settings) -> list[str]:
    """What keeps the Graph client from getting a token, said in the settings' names."""
    found = []
    if not settings.graph_client:
        found.append("no client id (SAFELINKS_GRAPH_CLIENT_ID or MicrosoftAppId)")
    if not settings.graph_secret and settings.graph_client_certificate is None:
        found.append("no secret or certificate (SAFELINKS_GRAPH_CLIENT_SECRET, _CERTIFICATE or MicrosoftAppPassword)")
    if not settings.graph_tenant and not settings.graph_token_url:
        found.append("no tenant (SAFELINKS_GRAPH_TENANT_ID or MicrosoftAppTenantId)")
    return found


def _text(record: QuarantineRecord) -> tuple[str, str]:
    """(who, what happened) for the alert comment and the card's note."""
    if record.state is State.HIDDEN:
        who = record.requested_by or "Safe Links"
        return who, f"Message hidden from its readers by {who} (quarantine #{record.id}): {record.reason}"
    if record.state is State.RELEASED:
        who = record.released_by or "someone"
        return who, f"Message released to its readers by {who} (quarantine #{record.id})."
    verb = "released" if record.last_action == "release" else "hidden"
    return "Safe Links", f"Message could not be {verb} (quarantine #{record.id}): {record.state_detail}"


def announcer(get: Callable[[], Alerting]) -> Callable[[QuarantineRecord, list[int] | None], Any]:
    """Tell the alerts raised on the record's message what happened to it (comment, card, details)."""

    async def announce(record: QuarantineRecord, alert_ids: list[int] | None) -> None:
        system = get()
        if alert_ids is None:
            alert_ids = await system.writer.alerts.ids_of_message(record.conversation_id, record.message_id)
        who, text = _text(record)
        for alert_id in alert_ids:
            alert = await system.writer.alerts.get(alert_id)
            if alert is None:
                continue
            state = {**(alert.details.get("quarantine") or {}), "id": record.id, "state": record.state.value,
                     "requested_by": record.requested_by, "released_by": record.released_by,
                     "why": record.state_detail}
            async with system.writer.db.transaction() as tx:
                await AlertStore.set_fields(tx, alert.id, {"details": json.dumps({**alert.details,
                                                                                  "quarantine": state})})
            await system.actions.update_alert(alert.id, Changes(comment=text), Actor(who, who, via="quarantine"),
                                              note=text)

    return announce


async def release_alert_message(quarantine: Quarantine, alert: Alert, actor: Actor) -> QuarantineOutcome:
    """Release the message an alert is about (the card's and the console's "Release message")."""
    if not alert.conversation_id or not alert.message_id:
        raise QuarantineError("this alert names no Teams message")
    record = await quarantine.store.of_message(alert.conversation_id, alert.message_id)
    if record is None:
        raise QuarantineError("this message was never hidden")
    return await quarantine.release(record.id, actor=actor)


async def hide_alert_message(quarantine: Quarantine, system: Alerting, alert: Alert, actor: Actor
                             ) -> QuarantineOutcome:
    """Hide a reported message (the card's and the console's "Hide message"), with the report's links."""
    if not alert.conversation_id or not alert.message_id:
        raise QuarantineError("this alert names no Teams message")
    if not quarantine.enabled:
        raise QuarantineError("quarantine is off (SAFELINKS_TEAMS_QUARANTINE)")
    if alert.rule_id != REPORTED_RULE:
        raise QuarantineError("only a message a user reported is hidden by hand")
    ev = await EvidenceStore(system.writer.db).get(alert.conversation_id, alert.message_id)
    if ev is None:
        raise QuarantineError("the message is no longer kept")
    links = [JudgedLink(str(x.get("url")), str(x.get("verdict")), str(x.get("source") or ""))
             for x in (alert.details.get("report") or {}).get("links", []) if x.get("url")]
    who = actor.name or actor.id
    outcome = await quarantine.hide_now(ev, links, cause=Cause.MANUAL, actor=actor,
                                        reason=f"hidden by {who} after a user report (alert {alert.id})")
    if outcome.record.state is State.FAILED:
        raise QuarantineError(f"the message cannot be hidden: {outcome.record.state_detail}")
    return outcome


def card_verbs(get_quarantine: Callable[[], Quarantine], get_alerting: Callable[[], Alerting]) -> dict[str, Any]:
    """"Release message" and "Hide message" on alert cards, for administrators only."""

    async def act(action: CardAction) -> dict[str, Any] | None:
        quarantine, system = get_quarantine(), get_alerting()
        if (action.user_aad_id or "").lower() not in system.actions.admins:
            raise QuarantineRefused("only administrators (SAFELINKS_ADMINS) may hide or release messages")
        try:
            alert_id = int((action.data or {})["alert_id"])
        except (KeyError, ValueError, TypeError):
            raise QuarantineRefused("this card is missing the alert it belongs to") from None
        alert = await system.writer.alerts.get(alert_id)
        if alert is None or not alert.conversation_id or not alert.message_id:
            raise QuarantineRefused("this alert names no Teams message")
        who = action.user_name or action.user_aad_id or "an administrator"
        actor = Actor(action.user_aad_id or action.user_id or who, who, via="card")
        try:
            if action.verb == RELEASE_VERB:
                outcome = await release_alert_message(quarantine, alert, actor)
                note = f"{who} asked to release the message (quarantine #{outcome.record.id})."
            else:
                outcome = await hide_alert_message(quarantine, system, alert, actor)
                note = f"{who} asked to hide the message (quarantine #{outcome.record.id})."
            if not outcome.changed:  # a second press: answered like the alert buttons', nothing recorded
                note = f"{outcome.already().capitalize()}: nothing was asked again."
        except QuarantineError as exc:
            raise QuarantineRefused(str(exc)) from None
        try:
            return await system.actions.card_for(alert_id, note)
        except AlertError as exc:
            raise QuarantineRefused(str(exc)) from None

    return {RELEASE_VERB: act, HIDE_VERB: act}


def setup_quarantine(app: web.Application, *, role: str, poll_interval: float = 0.5) -> None:
    """Quarantine for ``role``: Graph deliveries and the look-back for all/worker, reports for all/bot."""
    background = role in ("all", "worker")
    own_alerting: list[Alerting] = []

    def alerting() -> Alerting:
        found = app.get(ALERTING)
        return found if found is not None else own_alerting[0]

    registry = app.get(CARD_ACTIONS)
    if registry is not None:
        for verb, handler in card_verbs(lambda: app[QUARANTINE], alerting).items():
            registry.register_verb(verb, handler)

    async def running(app: web.Application) -> AsyncIterator[None]:
        services: Services = app[SERVICES]
        settings = services.settings
        outbox = app.get(ALERT_OUTBOX)
        if outbox is None:
            outbox = Outbox(services.db, clock=services.clock, metrics=services.metrics, poll_interval=poll_interval,
                            lease_seconds=settings.outbox_lease_seconds)
        if app.get(ALERTING) is None:
            own_alerting.append(alerting_for(services, outbox, teams_outbox=app.get(TEAMS_OUTBOX),
                                             register_handlers=False))
        graph: GraphClient | None = None
        try:
            graph = graph_client(settings)
        except GraphError as exc:
            log.error("Microsoft Graph is not usable, quarantine cannot hide messages: %s", exc)
        if settings.teams_quarantine != "off" and background:
            for problem in graph_problems(settings):
                log.warning("quarantine is on but %s: hiding will fail until it is set", problem)
        rule = alerting().rules.get("malicious-url-click")
        quarantine = Quarantine(services.db, outbox, mode=Mode(settings.teams_quarantine), clock=services.clock,
                                public_url=settings.public_url, graph=graph, announce=announcer(alerting),
                                **({"lookback_seconds": rule.lookback_seconds} if rule is not None else {}))
        app[QUARANTINE] = quarantine
        reporting = report_rule(settings)
        writer = alerting().writer
        if writer.rules is not None and writer.rules.get(reporting.id) is None:
            # The writer finds an alert's rule to announce its updates (webhooks); the engine's own rule set,
            # which decides what raises alerts, is left as it is.
            writer.rules = RuleSet((*writer.rules.rules, reporting))
        handling = app.get(HANDLING)
        if handling is not None:
            handling.reporting.desk = ReportDesk(services.db, writer, quarantine_on=quarantine.enabled,
                                                 rule=reporting)
            handling.reporting.channel = alerting().channel
            handling.quarantine.lookback = quarantine.lookback
        tasks: list[asyncio.Task[None]] = []
        if background:
            outbox.register(KIND, quarantine.deliver)
            services.bus.subscribe(VerdictChanged, quarantine.wake)
            tasks.append(asyncio.create_task(lead_forever(services.db, "quarantine:changes", quarantine.run),
                                             name="quarantine-lookback"))
        try:
            yield
        finally:
            await stop_tasks(tasks)
            if graph is not None:
                await graph.close()

    app.cleanup_ctx.append(running)
