"""``safelinks serve``: run the service."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys

from aiohttp import web

from safelinks.cli.context import CliError, settings_from
from shared.clicks import Workload
from shared.config import Settings
from shared.policy import PolicyError, load_policies
from shared.services import keyring_from
from shared.signing import LinkContext, LinkSigner, SigningError
from shared.store import StoreError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the proxy, the bot and the worker (or one role)")
    p.add_argument("--role", choices=["all", "bot", "proxy", "worker", "console"], help="what this process runs")
    p.add_argument("--host", help="address to listen on (SAFELINKS_HOST)")
    p.add_argument("--port", type=int, help="port to listen on (SAFELINKS_PORT)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    overrides = {k: v for k, v in (("role", args.role), ("host", args.host), ("port", args.port)) if v}
    settings = settings_from(args, **overrides)
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from safelinks.server import create_app

    try:
        signer = LinkSigner(keyring_from(settings), settings.public_url)
        load_policies(settings.policy_file)  # refuse a broken policy file before listening
    except SigningError as exc:
        raise CliError(f"bad configuration: SAFELINKS_SIGNING_KEYS: {exc}", 2) from None
    except PolicyError as exc:
        raise CliError(f"bad configuration: SAFELINKS_POLICY_FILE: {exc}", 2) from None
    sample = signer.wrap("https://www.example.com/", LinkContext(workload=Workload.TEAMS, recipient="you@example.com"))
    print(f"teams-safelinks {settings.role} listening on http://{settings.host}:{settings.port}", flush=True)
    print(f"  public URL:   {settings.public_url}", flush=True)
    print(f"  database:     {settings.effective_database_url.split('@')[-1]}", flush=True)
    if settings.role in ("all", "bot"):
        mode = "authenticated" if settings.bot_authenticated else "LOCAL UNAUTHENTICATED (no MicrosoftAppId)"
        print(f"  bot endpoint: {settings.public_url}/api/messages ({mode})", flush=True)
    print(f"  try a link:   {sample}", flush=True)
    if settings.role in ("all", "console"):
        print(f"  console:      {_console_link(settings)}", flush=True)
        print("                (one-time sign-in, 10 minutes; `safelinks console link` prints another)", flush=True)
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    app = create_app(settings)
    app.on_startup.append(_freeze_startup_objects)
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None, loop=loop)
    return 0


def _console_link(settings: Settings) -> str:
    import time

    from console.sessions import issue_link

    try:
        return asyncio.run(issue_link(settings, now=time.time()))
    except StoreError as exc:
        raise CliError(f"database: {exc}") from None


async def _freeze_startup_objects(app: web.Application) -> None:
    # Everything built at start (modules, templates, feed indexes) lives as long as the process: move
    # it out of the collector's sight so full collections stop scanning it in the middle of clicks.
    gc.collect()
    gc.freeze()


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop
