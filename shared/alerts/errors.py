"""What can go wrong in the alert engine, as one exception tree."""

from __future__ import annotations


class AlertError(Exception):
    """Base of every alert-engine error."""


class RulesError(AlertError):
    """A rules file (or a rule in it) is invalid; the message names the rule and the field."""


class NotFound(AlertError):
    """No alert or incident has that id."""


class InvalidChange(AlertError):
    """A requested update (status, classification, assignee) is not allowed."""


class NotAuthorized(AlertError):
    """The person acting on an alert is neither in the security channel nor an administrator."""
