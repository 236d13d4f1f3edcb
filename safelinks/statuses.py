"""The HTTP status an API request's failure answers with, chosen by the error's type in this one place.

Handlers raise the domain's errors (``NotFound``, ``InvalidChange``, ``QuarantineError`` ...); the API's
guard turns them into ``{"error": {"code", "message"}}`` with the status below. An error not listed is
no answer the client can act on: it is left to the server (a 500, logged).
"""

from __future__ import annotations

from shared.alerts.errors import AlertError, NotFound
from shared.errors import SafeLinksError
from shared.quarantine import QuarantineError, QuarantineNotFound

__all__ = ["Forbidden", "status_of"]


class Forbidden(SafeLinksError):
    """The API token is valid but may not do what the request asks."""


# First match wins: the most specific types come first.
_STATUSES: tuple[tuple[type[SafeLinksError], int, str], ...] = (
    (NotFound, 404, "NotFound"),
    (QuarantineNotFound, 404, "NotFound"),
    (Forbidden, 403, "Forbidden"),
    (AlertError, 400, "BadRequest"),  # a change not allowed, a click record that cannot be read
    (QuarantineError, 400, "BadRequest"),
)


def status_of(exc: SafeLinksError) -> tuple[int, str] | None:
    """The HTTP status and error code for ``exc``; None when the API has no answer for it."""
    return next(((status, code) for kind, status, code in _STATUSES if isinstance(exc, kind)), None)
