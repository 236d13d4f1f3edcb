"""Tenant Allow/Block List (TABL) for URLs: its actions, its errors, expiry, and the rules the modules beside
it follow. Pure domain, no storage.

The list is cut by concept: ``tenant_list_syntax`` reads an entry's text (``parse_entry``) into a
``tenant_list_pattern.Pattern``, which matches a URL; ``tenant_list_entries`` holds the stored entries
(``TablEntry``) and the index the click path asks (``TablIndex``).

The syntax and match tables follow Defender's "Allow or block URLs using the Tenant Allow/Block
List" page (URL syntax section and its scenario tables):

- Hosts are Punycode only, contain a period with >= 1 character left and >= 2 right of it, and end
  in a known public suffix (so `test.pdf` is refused as a filename, `contoso` as not resolvable).
  IPv4/IPv6 are fine; ports, protocols, user:pass, quotes and fragments are not; <= 250 characters.
- `contoso.com`: an allow matches that host with no path; a block also matches every path, every
  subdomain, and the domain anywhere in the URL as a whole name (`test.com/q=contoso.com`), never
  a longer name (`abc-contoso.com`).
- `*.contoso.com` subdomains (no path), `*.contoso.com/*` subdomains with a path,
  `contoso.com/*` / `contoso.com/a/*` a path below (at least one character after the `/`),
  `~contoso.com` the domain and subdomains without a path, `~contoso.com~` the domain and
  subdomains with any path, or the domain right after a `/` in another URL's path,
  `*.TLD/*` (blocks) every host under a public suffix, `1.2.3.4` exactly, `1.2.3.4/*` its paths.
- Left wildcards and tildes are block-only; Defender accepts them for allows only through the
  advanced-delivery list (`parse_entry(..., advanced_delivery=True)`).

Choices where Defender is silent (documented here, pinned by tests):
- Matching is case-insensitive in host and path; the fragment is ignored; a lone `/` path is
  the same as no path.
- A block for a host with a path (`contoso.com/a`) covers that path, its subpaths and
  subdomains (blocks imply more, as the plain-domain row shows); an allow covers it exactly.
  IP entries never imply subpaths (`1.2.3.4` block does not match `1.2.3.4/a`).
- Block entries ignore the URL's port; allow entries match only the scheme's default port.
- When an allow and a block both match, the block wins ("block entries take precedence over
  allow entries", TABL overview page).
- Expiry: a block without a date expires 30 days after creation (`default_expiry`). An allow
  without a date uses Defender's "remove 45 days after last used date" (`RemoveAfter 45`): it
  lapses 45 days after its last use, or after creation if never used; `default_expiry` gives
  allows Defender's 30-day portal default when the caller wants a fixed date instead.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from shared.errors import SafeLinksError

__all__ = [
    "ALLOW_DEFAULT_DAYS",
    "ALLOW_MAX_DAYS",
    "BLOCK_DEFAULT_DAYS",
    "BLOCK_MAX_DAYS",
    "MAX_ENTRY_LENGTH",
    "REMOVE_AFTER_UNUSED",
    "TablAction",
    "TablError",
    "default_expiry",
    "validate_expiry",
]

MAX_ENTRY_LENGTH = 250
BLOCK_DEFAULT_DAYS = 30
BLOCK_MAX_DAYS = 90
ALLOW_DEFAULT_DAYS = 30
ALLOW_MAX_DAYS = 30
REMOVE_AFTER_UNUSED = timedelta(days=45)


class TablError(SafeLinksError, ValueError):
    """An entry or a URL that the Tenant Allow/Block List cannot accept."""


class TablAction(enum.Enum):
    ALLOW = "allow"
    BLOCK = "block"


def default_expiry(action: TablAction, now: datetime) -> datetime | None:
    """Defender's default removal date for a new entry created at `now` (30 days either way)."""
    days = BLOCK_DEFAULT_DAYS if action is TablAction.BLOCK else ALLOW_DEFAULT_DAYS
    return now + timedelta(days=days)


def validate_expiry(action: TablAction, expires_at: datetime | None, now: datetime) -> None:
    """Refuse an expiry Defender would refuse: past dates, blocks > 90 days, allows > 30 days.

    `None` means "never" for blocks and "45 days after last use" for allows.
    """
    if expires_at is None:
        return
    if expires_at <= now:
        raise TablError("the expiry date is in the past")
    limit = BLOCK_MAX_DAYS if action is TablAction.BLOCK else ALLOW_MAX_DAYS
    if expires_at - now > timedelta(days=limit):
        raise TablError(f"{action.value} entries can expire at most {limit} days from now")
