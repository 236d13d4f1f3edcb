"""What can go wrong in the alert engine, as one exception tree."""

from __future__ import annotations

from shared.errors import ConfigError, SafeLinksError


class AlertError(SafeLinksError):
    """Base of every alert-engine error."""


class RulesError(AlertError):
    """A rules file (or a rule in it) is invalid; the message names the rule and the field."""


class RulesFileError(RulesError, ConfigError):
    """The configured rules file (``SAFELINKS_ALERT_RULES_FILE``) cannot be used."""

    setting = "SAFELINKS_ALERT_RULES_FILE"


class NotFound(AlertError):
    """No alert or incident has that id."""


class InvalidChange(AlertError):
    """A requested update (status, classification, assignee) is not allowed."""


class NotAuthorized(AlertError):
    """The person acting on an alert is neither in the security channel nor an administrator."""
