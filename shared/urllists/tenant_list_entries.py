"""Stored Tenant Allow/Block List entries (``TablEntry``), when they lapse, and the index of them the click path
asks (``TablIndex``): a block over an allow, then the most specific entry."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared.urllists.tenant_list import REMOVE_AFTER_UNUSED, TablAction
from shared.urllists.tenant_list_pattern import Pattern, TokenMode, UrlView, host_suffixes
from shared.urllists.tenant_list_syntax import parse_entry
from shared.urls import WebURL

__all__ = ["TablEntry", "TablIndex", "is_expired"]


@dataclass(frozen=True, slots=True)
class TablEntry:
    """A stored TABL URL entry (`value` as entered, normalised)."""

    value: str
    action: TablAction
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    notes: str = ""
    id: int | None = None
    pattern: Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pattern = parse_entry(self.value, self.action)
        object.__setattr__(self, "value", pattern.value)
        object.__setattr__(self, "pattern", pattern)


def is_expired(entry: TablEntry, now: datetime) -> bool:
    """Whether the entry no longer applies at `now` (see ``tenant_list``'s notes on allows)."""
    if entry.expires_at is not None:
        return entry.expires_at <= now
    if entry.action is TablAction.ALLOW:
        return (entry.last_used_at or entry.created_at) + REMOVE_AFTER_UNUSED <= now
    return False


class TablIndex:
    """All live entries, indexed by anchor host so a lookup touches only candidate entries."""

    __slots__ = ("_by_anchor", "_by_name", "_size")

    def __init__(self, entries: Iterable[TablEntry]) -> None:
        by_anchor: dict[str, list[TablEntry]] = {}
        by_name: dict[str, list[TablEntry]] = {}
        size = 0
        for entry in entries:
            pattern = entry.pattern
            by_anchor.setdefault(pattern.anchor, []).append(entry)
            if pattern.token_mode is not TokenMode.NONE:
                by_name.setdefault(pattern.anchor, []).append(entry)
            size += 1
        self._by_anchor = by_anchor
        self._by_name = by_name
        self._size = size

    def __len__(self) -> int:
        return self._size

    def match(self, url: str | WebURL, now: datetime | None = None) -> TablEntry | None:
        """The entry deciding `url`: a block over an allow, then the most specific anchor."""
        view = UrlView(url)
        when = now if now is not None else datetime.now(UTC)
        best: TablEntry | None = None
        for entry in self._candidates(view):
            if best is not None and not _better(entry, best):
                continue
            if is_expired(entry, when) or not entry.pattern.matches_view(view):
                continue
            best = entry
        return best

    def _candidates(self, view: UrlView) -> Iterable[TablEntry]:
        by_anchor = self._by_anchor
        for suffix in [view.host] if ":" in view.host else host_suffixes(view.host):
            found = by_anchor.get(suffix)
            if found:
                yield from found
        if self._by_name and (view.rest or view.extra):
            by_name = self._by_name
            # Each entry is tried once, however often its name recurs: a path repeating a name
            # thousands of times must not try the entry (which scans every name) thousands of times.
            seen: set[str] = set()
            for name, _after_slash in view.tokens():
                for suffix in host_suffixes(name):
                    if suffix in seen:
                        continue
                    found = by_name.get(suffix)
                    if found:
                        seen.add(suffix)
                        yield from found


def _better(entry: TablEntry, than: TablEntry) -> bool:
    if entry.action is not than.action:
        return entry.action is TablAction.BLOCK
    return len(entry.pattern.anchor) > len(than.pattern.anchor)
