"""``safelinks migrate [--dry-run]``: the schema migrations the database lacks, listed or applied.

``serve`` applies them at start too (and logs each); running this first, during an upgrade, shows
what will change and lets the migration run once, before the replicas start.
"""

from __future__ import annotations

import argparse
import asyncio

from safelinks.cli.context import done, settings_from
from shared.store import open_database
from shared.store.migrations import migrate, pending


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("migrate", help="apply the database's pending schema migrations (or list them)")
    p.add_argument("--dry-run", action="store_true", help="only list the pending migrations; change nothing")
    p.set_defaults(func=run, changes=True)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)

    async def work() -> tuple[list[tuple[int, str]], list[int]]:
        db = await open_database(settings.effective_database_url, synchronous=settings.sqlite_synchronous,
                                 apply_migrations=False)
        try:
            waiting = await pending(db)
            applied = [] if args.dry_run else await migrate(db)
            return waiting, applied
        finally:
            await db.close()

    waiting, applied = asyncio.run(work())
    names = [name for _, name in waiting]
    if args.dry_run:
        text = "\n".join(["pending migrations:", *(f"  {n}" for n in names)]) if names else "no pending migrations"
        done(args, text, pending=names, applied=[])
    else:
        ran = [name for version, name in waiting if version in applied]
        text = "\n".join(["applied:", *(f"  {n}" for n in ran)]) if ran else "nothing to apply: the schema is current"
        done(args, text, pending=[], applied=ran)
    return 0
