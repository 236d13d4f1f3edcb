"""The alert system: the engine, its writer, actions and delivery handlers, assembled from the running services."""

from __future__ import annotations

from dataclasses import dataclass

from shared.alerts.actions import AlertActions
from shared.alerts.budget import Budget
from shared.alerts.email import EmailSender, SmtpConfig
from shared.alerts.engine import AlertEngine
from shared.alerts.incidents import Correlator
from shared.alerts.ports import CardPoster, ChannelResolver, EvidenceSource, NoEvidence, first_channel, fixed_channel
from shared.alerts.rules import RuleSet, rules_from_settings
from shared.alerts.webhooks import WebhookSender, secrets_of, warn_unsigned
from shared.alerts.writer import AlertWriter
from shared.config import Settings
from shared.outbox import Outbox
from shared.services import Services


@dataclass
class Alerting:
    rules: RuleSet
    writer: AlertWriter
    actions: AlertActions
    engine: AlertEngine
    channel: ChannelResolver
    outbox: Outbox
    webhooks: WebhookSender


def smtp_config(settings: Settings) -> SmtpConfig:
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        security=settings.smtp_security,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value(),
        sender=settings.smtp_from,
        timeout=settings.smtp_timeout,
    )


def build_alerting(
    services: Services,
    outbox: Outbox,
    *,
    post_card: CardPoster | None = None,
    evidence: EvidenceSource | None = None,
    channel: ChannelResolver | None = None,
    rules: RuleSet | None = None,
    register_handlers: bool = True,
) -> Alerting:
    """Wire the engine to the services; ``channel`` (the bot's stored one) falls back to the setting."""
    settings = services.settings
    resolver = fixed_channel(settings.security_channel)
    if channel is not None:
        resolver = first_channel(channel, resolver)
    correlator = Correlator(settings.incident_window_hours * 3600.0, settings.incident_max_alerts)
    writer = AlertWriter(
        services.db,
        outbox,
        correlator,
        post_card=post_card,
        evidence=evidence or NoEvidence(),
        public_url=settings.public_url,
        explain=services.verdicts.check,
        budget=Budget(settings.alert_notify_burst, settings.alert_notify_window_seconds),
    )
    actions = AlertActions(
        writer,
        tenant_list=services.tenant_list,
        clock=services.clock,
        channel=resolver,
        admins=settings.admins,
    )
    ruleset = rules or rules_from_settings(settings)
    writer.rules = ruleset
    engine = AlertEngine(
        services.db,
        ruleset,
        writer,
        actions,
        resolver,
        services.clock,
        metrics=services.metrics,
    )
    configured = [hook for rule in ruleset.rules for hook in rule.notifications.webhooks]
    hooks = WebhookSender(secrets_of(configured))
    if register_handlers:
        warn_unsigned(configured)
        outbox.register("email", EmailSender(smtp_config(settings)))
        outbox.register("webhook", hooks)
    return Alerting(ruleset, writer, actions, engine, resolver, outbox, hooks)
