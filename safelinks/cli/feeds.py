"""``safelinks feeds add|update|list|status|remove|enable|disable``: the threat feeds."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TextIO, TypeVar

from safelinks.cli.context import CLI_ACTOR, CliError, UsageError, done, with_services
from safelinks.cli.table import print_json, print_table
from shared.redaction import redact_url
from shared.services import Services
from shared.store.feeds import FORMAT_NAMES, FeedRecord, FeedRegistryError, FeedSpec, format_every, parse_every
from shared.verdicts.feed_updater import FeedUpdater, UpdateOutcome

T = TypeVar("T")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("feeds", help="threat feeds: add, update, list, status, remove")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    add = verbs.add_parser("add", help="add a feed (and import it now)")
    add.add_argument("name", help="a short name: letters, digits, '.', '_', '-'")
    add.add_argument("source", help="a file path or an http(s) URL")
    add.add_argument("--format", required=True, choices=FORMAT_NAMES, metavar="FORMAT",
                     help="urlhaus (CSV dump or online list; urlhaus-csv, urlhaus-text to say which), openphish, "
                          "phishtank (JSON or CSV; phishtank-json, phishtank-csv to say which), plain (a URL or "
                          "domain per line), csv (with --column)")
    add.add_argument("--column", help="for --format csv: the column holding the URL or domain")
    add.add_argument("--every", default=None, help="refresh interval: 90s, 15m, 1h, 1d or plain seconds, at least 60 s "
                     "(default: SAFELINKS_FEED_EVERY_DEFAULT)")
    add.add_argument("--no-update", action="store_true", help="only register it; the worker imports it")
    _progress_flags(add)
    add.set_defaults(func=_add, changes=True)
    up = verbs.add_parser("update", help="fetch feeds now (all, or one)")
    up.add_argument("name", nargs="?")
    up.add_argument("--force", action="store_true",
                    help="download even if the source says it is unchanged, and accept a download that drops "
                         "more than half of a feed's entries (otherwise held)")
    _progress_flags(up)
    up.set_defaults(func=_update, changes=True)
    ls = verbs.add_parser("list", help="the configured feeds")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)
    st = verbs.add_parser("status", help="age, last success and error, entries, bad lines, hits")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=_status)
    rm = verbs.add_parser("remove", help="remove a feed (its entries stop matching)")
    rm.add_argument("name")
    rm.set_defaults(func=_remove, changes=True)
    for verb, enabled in (("enable", True), ("disable", False)):
        t = verbs.add_parser(verb, help=f"{verb} a feed")
        t.add_argument("name")
        t.set_defaults(func=_toggle, enabled=enabled, changes=True)


def _progress_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="show a progress bar on stderr (default: when stderr is a terminal)")
    g.add_argument("--no-progress", dest="progress", action="store_false")


class ProgressBar:
    """Bytes downloaded (against the size, when known) on one stderr line, redrawn at most 10 times a second."""

    def __init__(self, name: str, out: TextIO, width: int = 30) -> None:
        self._name = name
        self._out = out
        self._width = width
        self._last = 0.0
        self.drawn = False

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self._last < 0.1 and (total is None or done < total):
            return
        self._last = now
        if total:
            filled = int(self._width * min(done, total) / total)
            bar = "#" * filled + "." * (self._width - filled)
            text = f"{self._name} [{bar}] {_mb(done)}/{_mb(total)} MB"
        else:
            text = f"{self._name} {_mb(done)} MB"
        self._out.write("\r" + text)
        self._out.flush()
        self.drawn = True

    def indexing(self) -> None:
        if self.drawn:
            self._out.write(f"\r{self._name}: indexing…" + " " * self._width + "\r")
            self._out.flush()

    def finish(self, line: str) -> None:
        self._out.write(("\r" if self.drawn else "") + line + "\n")
        self._out.flush()


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f}"


def _describe(outcome: UpdateOutcome) -> str:
    if outcome.status == "updated":
        text = (f"{outcome.name}: {outcome.entries:,} entries (+{outcome.added:,} -{outcome.removed:,}), "
                f"{outcome.bad_lines} bad lines")
        if outcome.rejected:
            text += f", {outcome.rejected} without a canonical form"
        for example in outcome.bad_examples[:3]:
            text += f"\n  {example}"
        return text
    if outcome.status == "not-modified":
        return f"{outcome.name}: unchanged ({outcome.entries:,} entries)"
    if outcome.status == "busy":
        return f"{outcome.name}: another process is updating it"
    if outcome.status == "held":
        return f"{outcome.name}: update {outcome.error}"
    return f"{outcome.name}: update failed, keeping the last good copy: {outcome.error}"


async def _run_update(updater: FeedUpdater, name: str, force: bool, show: bool, *,
                      quiet_failure: bool = False) -> UpdateOutcome:
    bar = ProgressBar(name, sys.stderr)
    outcome = await updater.update(name, force=force, progress=bar if show else None, actor=CLI_ACTOR)
    if quiet_failure and outcome.status == "failed":
        if bar.drawn:
            bar.finish("")
        return outcome  # the caller says what went wrong, once
    bar.finish(_describe(outcome)) if show else print(_describe(outcome), file=sys.stderr)
    return outcome


def _outcome_json(outcome: UpdateOutcome) -> dict[str, Any]:
    return {"name": outcome.name, "status": outcome.status, "entries": outcome.entries,
            "added": outcome.added, "removed": outcome.removed, "bad_lines": outcome.bad_lines,
            "error": outcome.error or None}


def _updater(s: Services) -> FeedUpdater:
    if s.sources is None:
        raise CliError("verdict sources are not available")
    return s.sources.updater


def _show(args: argparse.Namespace) -> bool:
    return sys.stderr.isatty() if args.progress is None else bool(args.progress)


def _add(args: argparse.Namespace) -> int:
    try:
        every_given = parse_every(args.every) if args.every else None
    except FeedRegistryError as exc:
        raise UsageError(f"--every: {exc}") from None

    async def work(s: Services) -> int:
        every = s.settings.feed_every_default if every_given is None else every_given
        updater = _updater(s)
        record = await updater.registry.add(FeedSpec(args.name, args.source, args.format, args.column, every),
                                            now=time.time(), actor=CLI_ACTOR)
        described = f"feed {record.name} ({record.spec.format}, every {format_every(record.spec.every)})"
        if args.no_update:
            done(args, f"added {described}; the worker imports it", **_spec_json(record))
            return 0
        outcome = await _run_update(updater, args.name, False, _show(args), quiet_failure=True)
        if outcome.status == "failed":
            # A feed that could not be read the first time is not kept: it would only fail every round.
            await updater.retire(args.name, remove=True, actor=CLI_ACTOR)
            raise CliError(f"feed {args.name} not added: cannot read {args.source}: {outcome.error}", 1)
        record = next((r for r in await updater.registry.list() if r.name == args.name), record)
        done(args, f"added {described}", **_spec_json(record), update=_outcome_json(outcome))
        return 0

    return _guarded(args, work)


def _update(args: argparse.Namespace) -> int:
    async def work(s: Services) -> int:
        updater = _updater(s)
        names = [args.name] if args.name else [r.name for r in await updater.registry.list() if r.spec.enabled]
        if not names:
            print("no feeds configured (the demo feed is built in)", file=sys.stderr)
        failed = 0
        outcomes = []
        for name in names:
            outcome = await _run_update(updater, name, args.force, _show(args) and not args.json)
            outcomes.append(_outcome_json(outcome))
            failed += outcome.status in ("failed", "held")
        if args.json:
            print_json({"ok": not failed, "results": outcomes})
        return 1 if failed else 0

    return _guarded(args, work)


def _list(args: argparse.Namespace) -> int:
    records = _guarded(args, lambda s: _updater(s).registry.list())
    if args.json:
        print_json([_spec_json(r) for r in records])
    else:
        print_table(["Name", "Format", "Every", "Enabled", "Entries", "Source"],
                    [(r.name, r.spec.format, format_every(r.spec.every), r.spec.enabled, r.entries,
                      redact_url(r.spec.source)) for r in records], max_width=80)
    return 0


def _status(args: argparse.Namespace) -> int:
    async def work(s: Services) -> list[dict[str, Any]]:
        records = await _updater(s).registry.list()
        # The durable count, whichever process served the clicks.
        hits = await s.clicks.feed_hits(time.time() - 86400)
        now = time.time()
        return [_status_json(r, now, hits.get(r.name, 0)) for r in records]

    rows = _guarded(args, work)
    if args.json:
        print_json(rows)
        return 0
    print_table(["Name", "Entries", "Bad", "Age", "Lag", "Last success", "Hits 24h", "Last error"],
                [(r["name"], r["entries"], r["bad_lines"], _ago(r["age_seconds"]), _ago(r["update_lag_seconds"]),
                  r["last_success_at"] or "never", r["hits_24h"], r["last_error"] or "") for r in rows])
    return 0


def _remove(args: argparse.Namespace) -> int:
    cleared = _guarded(args, lambda s: _updater(s).retire(args.name, remove=True, actor=CLI_ACTOR))
    done(args, f"removed feed {args.name} ({cleared:,} entries logged as no longer listed)",
         name=args.name, removed=True, entries_cleared=cleared)
    return 0


def _toggle(args: argparse.Namespace) -> int:
    if args.enabled:
        _guarded(args, lambda s: _updater(s).registry.set_enabled(args.name, True, actor=CLI_ACTOR))
        done(args, f"enabled feed {args.name} (the worker imports it at its next round, or run `feeds update`)",
             name=args.name, enabled=True)
    else:
        cleared = _guarded(args, lambda s: _updater(s).retire(args.name, remove=False, actor=CLI_ACTOR))
        done(args, f"disabled feed {args.name} ({cleared:,} entries logged as no longer listed)",
             name=args.name, enabled=False, entries_cleared=cleared)
    return 0


def _guarded(args: argparse.Namespace, work: Callable[[Services], Awaitable[T]]) -> T:
    try:
        return with_services(args, work)
    except FeedRegistryError as exc:
        raise CliError(str(exc), 2) from None


def _iso(stamp: float | None) -> str | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")


def _ago(seconds: float | None) -> str:
    """Two units at most: `3d 4h`, `2h 5m`, `40s`."""
    if seconds is None:
        return ""
    left = int(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size}{unit}")
            left %= size
    return " ".join(parts[:2])


def _spec_json(r: FeedRecord) -> dict[str, Any]:
    return {"name": r.name, "source": redact_url(r.spec.source), "format": r.spec.format, "column": r.spec.column,
            "every_seconds": r.spec.every, "enabled": r.spec.enabled, "entries": r.entries}


def _status_json(r: FeedRecord, now: float, hits: int) -> dict[str, Any]:
    lag = r.lag(now)
    return {**_spec_json(r), "bad_lines": r.bad_lines, "rejected": r.rejected, "age_seconds": r.age(now),
            "update_lag_seconds": lag, "last_success_at": _iso(r.last_success_at),
            "last_changed_at": _iso(r.last_changed_at), "last_attempt_at": _iso(r.last_attempt_at),
            "last_error": r.last_error, "last_error_at": _iso(r.last_error_at), "sha256": r.sha256,
            "version": r.version, "hits_24h": hits}
