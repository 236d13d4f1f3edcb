"""Process logging: text or one JSON object per line (``SAFELINKS_LOG_FORMAT``), request ids, access log.

A request id is taken from a well-formed ``X-Request-Id`` (a load balancer's) or made here, echoed in
the answer, and attached to every log line written while the request is handled. The access log keeps
least data: the path without its query (a wrapped link's query names the recipient and the target)
and the client address anonymised as clicks are.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from shared.clicks import anonymize_ip
from shared.config import Settings
from shared.escaping import SafeLogRecords
from shared.services import SERVICES

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
_GIVEN_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# The attributes every LogRecord has; anything else on a record came in through ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
ACCESS = logging.getLogger("safelinks.access")


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request being handled (empty outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and value not in ("", None):
                entry[key] = value if isinstance(value, (str, int, float, bool)) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    """Route every logger to stderr in the configured format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(SafeLogRecords())  # one line per record, no credentials from URLs
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # The access log is asked for explicitly: it is written at info whatever the level of the rest.
    ACCESS.setLevel(logging.INFO if settings.access_log else logging.WARNING)


def wants_request_ids(settings: Settings) -> bool:
    return settings.log_format == "json" or settings.access_log


@web.middleware
async def request_ids(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                      ) -> web.StreamResponse:
    """Give the request an id for the logs and echo it to the client."""
    given = request.headers.get("X-Request-Id", "")
    rid = given if _GIVEN_ID.match(given) else secrets.token_hex(8)
    REQUEST_ID.set(rid)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers["X-Request-Id"] = rid
        raise
    response.headers["X-Request-Id"] = rid
    return response


class AccessLogger(AbstractAccessLogger):
    """One line per request, as a record of ``safelinks.access`` with its fields as ``extra``."""

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(ACCESS, log_format)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        remote = request.remote
        app = getattr(request, "app", None)
        if app is None or SERVICES not in app or app[SERVICES].settings.anonymize_ip:
            remote = anonymize_ip(remote)
        # The raw (still percent-encoded) path: a decoded one could carry line breaks into a text log.
        path = request.raw_path.split("?", 1)[0]
        self.logger.info(
            "%s %s %s", request.method, path, response.status,
            extra={"method": request.method, "path": path, "status": response.status,
                   "bytes": response.body_length, "duration_ms": round(time * 1000, 2),
                   "remote": remote or "", "request_id": REQUEST_ID.get()},
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


def access_logger(settings: Settings) -> dict[str, Any]:
    """The ``AppRunner`` arguments for the access log (none unless ``SAFELINKS_ACCESS_LOG``)."""
    if not settings.access_log:
        return {"access_log": None}
    return {"access_log": ACCESS, "access_log_class": AccessLogger}
