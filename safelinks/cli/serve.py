"""``safelinks serve``: run the service.

The port is bound before anything else starts, so a busy port is one line and no half-started service;
the banner comes once the port is bound and the services are up, and says what this process runs with.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import socket
import time
from typing import Any

from aiohttp import web

from safelinks.cli.context import CliError, settings_from
from safelinks.logs import access_logger, configure_logging
from safelinks.version import installed_version
from shared.clicks import Workload
from shared.config import Settings
from shared.policy import configured_policies
from shared.services import SERVICES, Services
from shared.signing import LinkContext
from shared.store.conversations import SECURITY_CHANNEL, ConversationStore


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the proxy, the bot and the worker (or one role)")
    p.add_argument("--role", choices=["all", "bot", "proxy", "worker", "console"], help="what this process runs")
    p.add_argument("--host", help="address to listen on (SAFELINKS_HOST)")
    p.add_argument("--port", type=int, help="port to listen on (SAFELINKS_PORT)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    overrides = {k: v for k, v in (("role", args.role), ("host", args.host), ("port", args.port)) if v}
    settings = settings_from(args, **overrides)
    configure_logging(settings)
    from bot import trust

    if settings.role in ("all", "bot"):
        trust.check_start(settings)  # no unauthenticated bot beyond loopback unless said explicitly
    configured_policies(settings.policy_file)  # refuse a broken policy file before listening
    sock = _bind(settings.host, settings.port)
    from safelinks.server import create_app

    loop = _new_loop()
    asyncio.set_event_loop(loop)
    app = create_app(settings)
    app.on_startup.append(_freeze_startup_objects)
    runner = web.AppRunner(app, handle_signals=True, **access_logger(settings))
    try:
        loop.run_until_complete(_serve(runner, sock, settings))
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        loop.run_until_complete(runner.cleanup())
        loop.close()
    return 0


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", 2) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CliError(f"cannot listen on {host}:{port}: the port is already in use "
                           "(another safelinks, or set SAFELINKS_PORT / --port)", 2) from None
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", 2) from None
    sock.setblocking(False)
    return sock


async def _serve(runner: web.AppRunner, sock: socket.socket, settings: Settings) -> None:
    """Start, print the banner, and serve until a signal ends it (GracefulExit from the runner's handler).

    One coroutine from start to stop: with a separate ``run_forever`` after the start, a SIGTERM that
    arrived between the two was sometimes lost under uvloop, and the service never stopped.
    """
    await runner.setup()
    await web.SockSite(runner, sock).start()
    for line in await banner(runner.app[SERVICES], settings):
        print(line, flush=True)
    await asyncio.Event().wait()


async def banner(services: Services, settings: Settings) -> list[str]:
    """What an operator checks first: version, where, which keys, which protections are configured."""
    if settings.security_channel:
        channel = "SAFELINKS_SECURITY_CHANNEL"
    elif await ConversationStore(services.db).setting(SECURITY_CHANNEL):
        channel = "set by an admin's 'alerts here'"
    else:
        channel = "NOT SET: alerts reach no channel (SAFELINKS_SECURITY_CHANNEL, or 'alerts here' in Teams)"
    sample = services.signer.wrap("https://www.example.com/",
                                  LinkContext(workload=Workload.TEAMS, recipient="you@example.com"))
    lines = [
        f"teams-safelinks {installed_version()} ({settings.role}) listening on "
        f"http://{settings.host}:{settings.port}",
        f"  public URL:       {settings.public_url}",
        f"  database:         {settings.effective_database_url.split('@')[-1]}",
        f"  signing key:      {services.key_origin}",
    ]
    if settings.role in ("all", "bot"):
        from bot import trust

        mode, tenants = trust.describe(settings)
        lines.append(f"  bot endpoint:     {settings.public_url}/api/messages ({mode})")
        lines.append(f"  bot {tenants}")
    lines += [
        f"  demo feed:        {'on (SAFELINKS_FEED_DEMO=false turns it off)' if settings.feed_demo else 'off'}",
        f"  admins:           {_count(settings.admins, 'SAFELINKS_ADMINS')}",
        f"  security channel: {channel}",
        f"  API tokens:       {_count(settings.api_tokens, 'SAFELINKS_API_TOKENS')}",
        f"  policy file:      {settings.policy_file or 'none (Built-in protection)'}",
        f"  try a link:       {sample}",
    ]
    if settings.role in ("all", "console"):
        from console.sessions import SignInLinks

        token = await SignInLinks(services.db).issue(now=time.time())
        lines += [f"  console:          {settings.public_url}/console/signin?token={token}",
                  "                    (one-time sign-in, 10 minutes; `safelinks console link` prints another)"]
    return lines


def _count(values: list[Any], setting: str) -> str:
    return f"{len(values)} set" if values else f"none ({setting})"


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
