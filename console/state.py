"""What the console's handlers share, kept under one application key."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from console.render import Templates

if TYPE_CHECKING:
    from console.overview import HourlyClicks
from console.sessions import Sessions, SignInLinks
from shared.services import Services


@dataclass
class Console:
    services: Services
    templates: Templates
    links: SignInLinks
    sessions: Sessions
    secure_cookie: bool
    oidc: object | None = None  # console.oidc.OidcClient when configured
    hourly: HourlyClicks = field(default_factory=lambda: _hourly())
    tasks: dict[str, asyncio.Task[Any]] = field(default_factory=dict)  # "update now" runs, the start's count

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.services.clock

    def now(self) -> float:
        return self.services.clock().timestamp()


def _hourly() -> HourlyClicks:
    from console.overview import HourlyClicks

    return HourlyClicks()


CONSOLE: web.AppKey[Console] = web.AppKey("console", Console)
