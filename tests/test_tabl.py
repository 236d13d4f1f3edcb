"""Tenant Allow/Block List: Defender's entry syntax, its scenario tables, precedence and expiry."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from shared.urllists.tenant_list import REMOVE_AFTER_UNUSED, TablAction, TablError, default_expiry, validate_expiry
from shared.urllists.tenant_list_entries import TablEntry, TablIndex, is_expired
from shared.urllists.tenant_list_syntax import parse_entry

ALLOW, BLOCK = TablAction.ALLOW, TablAction.BLOCK
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

# (entry, action, url, matches) -- every row of Defender's "URL entry scenarios" tables.
# Allow rows for left wildcards and tildes use the advanced delivery list, as Defender does.
SCENARIOS: list[tuple[str, TablAction, str, bool]] = [
    # Top-level domain blocking: *.<TLD>/*
    *[
        ("*.xyz/*", BLOCK, url, True)
        for url in (
            "a.xyz",
            "xyz/abcd",
            "b.abcd.xyz",
            "xyz/contoso.com",
            "xyz/q=contoso.com",
            "www.abcd.xyz",
            "www.abcd.xyz/q=a@contoso.com",
        )
    ],
    # No wildcards: contoso.com
    ("contoso.com", ALLOW, "contoso.com", True),
    *[
        ("contoso.com", ALLOW, url, False)
        for url in (
            "abc-contoso.com",
            "contoso.com/a",
            "payroll.contoso.com",
            "test.com/contoso.com",
            "test.com/q=contoso.com",
            "www.contoso.com",
            "www.contoso.com/q=a@contoso.com",
        )
    ],
    *[
        ("contoso.com", BLOCK, url, True)
        for url in (
            "contoso.com",
            "contoso.com/a",
            "payroll.contoso.com",
            "test.com/contoso.com",
            "test.com/q=contoso.com",
            "www.contoso.com",
            "www.contoso.com/q=a@contoso.com",
        )
    ],
    ("contoso.com", BLOCK, "abc-contoso.com", False),
    # Left wildcard: *.contoso.com
    *[
        ("*.contoso.com", action, url, expected)
        for action in (ALLOW, BLOCK)
        for url, expected in (
            ("www.contoso.com", True),
            ("xyz.abc.contoso.com", True),
            ("123contoso.com", False),
            ("contoso.com", False),
            ("test.com/contoso.com", False),
            ("www.contoso.com/abc", False),
        )
    ],
    # Right wildcard at top of path: contoso.com/a/*
    *[
        ("contoso.com/a/*", action, url, expected)
        for action in (ALLOW, BLOCK)
        for url, expected in (
            ("contoso.com/a/b", True),
            ("contoso.com/a/b/c", True),
            ("contoso.com/a/?q=joe@t.com", True),
            ("contoso.com", False),
            ("contoso.com/a", False),
            ("www.contoso.com", False),
            ("www.contoso.com/q=a@contoso.com", False),
        )
    ],
    # Left tilde: ~contoso.com
    *[
        ("~contoso.com", action, url, expected)
        for action in (ALLOW, BLOCK)
        for url, expected in (
            ("contoso.com", True),
            ("www.contoso.com", True),
            ("xyz.abc.contoso.com", True),
            ("123contoso.com", False),
            ("contoso.com/abc", False),
            ("www.contoso.com/abc", False),
        )
    ],
    # Right wildcard suffix: contoso.com/*
    *[
        ("contoso.com/*", action, url, expected)
        for action in (ALLOW, BLOCK)
        for url, expected in (
            ("contoso.com/?q=whatever@fabrikam.com", True),
            ("contoso.com/a", True),
            ("contoso.com/a/b/c", True),
            ("contoso.com/ab", True),
            ("contoso.com/b", True),
            ("contoso.com/b/a/c", True),
            ("contoso.com/ba", True),
            ("contoso.com", False),
        )
    ],
    # Left wildcard subdomain and right wildcard suffix: *.contoso.com/*
    *[
        ("*.contoso.com/*", action, url, expected)
        for action in (ALLOW, BLOCK)
        for url, expected in (
            ("abc.contoso.com/ab", True),
            ("abc.xyz.contoso.com/a/b/c", True),
            ("www.contoso.com/a", True),
            ("www.contoso.com/b/a/c", True),
            ("xyz.contoso.com/ba", True),
            ("contoso.com/b", False),
        )
    ],
    # Left and right tilde: ~contoso.com~
    *[
        ("~contoso.com~", action, url, expected)
        for action in (ALLOW, BLOCK)
        for url, expected in (
            ("contoso.com", True),
            ("contoso.com/a", True),
            ("www.contoso.com", True),
            ("www.contoso.com/b", True),
            ("xyz.abc.contoso.com", True),
            ("abc.xyz.contoso.com/a/b/c", True),
            ("contoso.com/b/a/c", True),
            ("test.com/contoso.com", True),
            ("123contoso.com", False),
            ("contoso.org", False),
            ("test.com/q=contoso.com", False),
        )
    ],
    # IP address: 1.2.3.4
    *[
        ("1.2.3.4", action, url, expected)
        for action in (ALLOW, BLOCK)
        for url, expected in (("1.2.3.4", True), ("1.2.3.4/a", False), ("11.2.3.4/a", False))
    ],
    # IP address with right wildcard: 1.2.3.4/*
    *[
        ("1.2.3.4/*", action, url, True)
        for action in (ALLOW, BLOCK)
        for url in ("1.2.3.4/b", "1.2.3.4/baaaa")
    ],
]


@pytest.mark.parametrize(("entry", "action", "url", "expected"), SCENARIOS)
def test_defender_scenario_rows(entry: str, action: TablAction, url: str, expected: bool) -> None:
    """Each row of Defender's TABL URL scenario tables matches (or not) exactly as documented."""
    pattern = parse_entry(entry, action, advanced_delivery=True)
    assert pattern.matches(url) is expected
    assert pattern.matches("https://" + url) is expected


# Defender's "Examples of invalid entries" plus the syntax rules, each with the reason given.
INVALID: list[tuple[str, TablAction, str]] = [
    ("contoso", BLOCK, "must contain a period"),
    ("*.contoso.*", BLOCK, "only one wildcard is allowed in the host"),
    ("*.com", BLOCK, "isn't a resolvable domain"),
    ("*.pdf", BLOCK, "isn't a resolvable domain"),
    ("test.pdf", BLOCK, "filename extensions"),
    ("*contoso.com", BLOCK, "left wildcard must be followed by '.'"),
    ("contoso.com*", BLOCK, "right wildcard must follow '/'"),
    ("*1.2.3.4", BLOCK, "wildcards aren't allowed in IP addresses"),
    ("1.2.3.4*", BLOCK, "wildcards aren't allowed in IP addresses"),
    ("contoso.com/a*", BLOCK, "right wildcard must follow '/'"),
    ("contoso.com/ab*", BLOCK, "right wildcard must follow '/'"),
    ("contoso.com:443", BLOCK, "ports aren't allowed"),
    ("abc.contoso.com:25", BLOCK, "ports aren't allowed"),
    ("*", BLOCK, "non-descriptive wildcards"),
    ("*.*", BLOCK, "non-descriptive wildcards"),
    ("conto*so.com", BLOCK, "middle wildcards"),
    ("conto~so.com", BLOCK, "'~' is allowed only first"),
    ("contoso.com/**", BLOCK, "double wildcards"),
    ("contoso.com/*/*", BLOCK, "double wildcards"),
    ("contoso.com/a*/b", BLOCK, "middle wildcards"),
    ("https://contoso.com", BLOCK, "protocols aren't allowed"),
    ("user:pass@contoso.com", BLOCK, "user names and passwords"),
    ("'contoso.com'", BLOCK, "quotes aren't allowed"),
    ('"contoso.com"', BLOCK, "quotes aren't allowed"),
    ("bücher.de", BLOCK, "Punycode"),
    (".com", BLOCK, "at least one character left of the period"),
    ("contoso.", BLOCK, "at least two characters right of the period"),
    ("contoso.c", BLOCK, "at least two characters right of the period"),
    ("", BLOCK, "empty"),
    ("contoso.com/" + "a" * 239, BLOCK, "longer than 250"),
    ("a" * 64 + ".com", BLOCK, "not a valid hostname label"),
    ("contoso.com~", BLOCK, "'~' is allowed only first"),
    ("~contoso.com/a", BLOCK, "take no path"),
    ("~*.contoso.com", BLOCK, "can't be combined"),
    ("contoso.com/#top", BLOCK, "fragments"),
    ("con toso.com", BLOCK, "whitespace"),
    ("*.contoso.com", ALLOW, "block entries only"),
    ("~contoso.com", ALLOW, "block entries only"),
    ("*.contoso.com/*", ALLOW, "block entries only"),
    ("*.com/*", ALLOW, "block entries only"),
    ("co.uk", BLOCK, "public suffix"),
]


@pytest.mark.parametrize(("entry", "action", "reason"), INVALID)
def test_invalid_entries_are_refused_with_a_reason(
    entry: str, action: TablAction, reason: str
) -> None:
    """Entries Defender refuses raise TablError naming the broken rule."""
    with pytest.raises(TablError, match=reason.replace("*", r"\*")):
        parse_entry(entry, action)


def test_tablerror_is_a_valueerror() -> None:
    """TablError belongs to the ValueError tree so generic input handlers catch it."""
    assert issubclass(TablError, ValueError)


VALID: list[tuple[str, TablAction, str]] = [
    ("t.co", BLOCK, "t.co"),
    ("CONTOSO.com", BLOCK, "contoso.com"),
    ("contoso.com/", ALLOW, "contoso.com"),
    ("xn--bcher-kva.de", BLOCK, "xn--bcher-kva.de"),
    ("2001:DB8::1", BLOCK, "2001:db8::1"),
    ("[2001:db8::1]/*", BLOCK, "[2001:db8::1]/*"),
    ("*.co.uk/*", BLOCK, "*.co.uk/*"),
    ("contoso.com/A/*", ALLOW, "contoso.com/a/*"),
    ("contoso.com/" + "a" * 238, BLOCK, "contoso.com/" + "a" * 238),
    ("a" * 63 + ".com", BLOCK, "a" * 63 + ".com"),
]


@pytest.mark.parametrize(("entry", "action", "normal"), VALID)
def test_valid_entries_are_normalised(entry: str, action: TablAction, normal: str) -> None:
    """Accepted entries keep a normalised value: lowercase, compressed IPv6, no lone '/'."""
    assert parse_entry(entry, action).value == normal


CHOICES: list[tuple[str, TablAction, str, bool]] = [
    ("contoso.com/a", ALLOW, "contoso.com/a", True),
    ("contoso.com/a", ALLOW, "contoso.com/a/b", False),
    ("contoso.com/a", BLOCK, "contoso.com/a/b", True),
    ("contoso.com/a", BLOCK, "www.contoso.com/a?x=1", True),
    ("contoso.com/a", BLOCK, "contoso.com/ab", False),
    ("contoso.com", ALLOW, "https://CONTOSO.com/", True),
    ("contoso.com", ALLOW, "https://contoso.com:8443/", False),
    ("contoso.com", BLOCK, "https://contoso.com:8443/x", True),
    ("contoso.com", BLOCK, "https://test.com/r?u=https%3A%2F%2Fcontoso.com%2F", True),
    ("contoso.com", BLOCK, "https://contoso.com.evil.net/", False),
    ("contoso.com", BLOCK, "https://contoso.community/", False),
    ("contoso.com/*", ALLOW, "contoso.com/", False),
    ("contoso.com/a/*", BLOCK, "https://contoso.com/A/B#frag", True),
    ("xn--bcher-kva.de", BLOCK, "https://bücher.de/", True),
    ("2001:db8::1", BLOCK, "http://[2001:db8:0::1]", True),
    ("1.2.3.4", BLOCK, "1.2.3.4/a", False),
]


@pytest.mark.parametrize(("entry", "action", "url", "expected"), CHOICES)
def test_documented_choices_where_defender_is_silent(
    entry: str, action: TablAction, url: str, expected: bool
) -> None:
    """Case, ports, fragments, encoded names and path blocks behave as the module documents."""
    assert parse_entry(entry, action).matches(url) is expected


@pytest.mark.parametrize("url", ["", "http://", "http://contoso.com:99999/", "http://[::1/"])
def test_unparseable_urls_raise_tablerror(url: str) -> None:
    """A URL that cannot be parsed raises TablError rather than matching silently."""
    with pytest.raises(TablError):
        parse_entry("contoso.com", BLOCK).matches(url)


def _entry(value: str, action: TablAction, **kw: object) -> TablEntry:
    return TablEntry(value=value, action=action, created_at=NOW - timedelta(days=1), **kw)  # type: ignore[arg-type]


def test_block_wins_over_allow() -> None:
    """When an allow and a block both match, the block entry decides."""
    allow = _entry("contoso.com/*", ALLOW, id=1)
    block = _entry("contoso.com", BLOCK, id=2)
    for entries in ([allow, block], [block, allow]):
        assert TablIndex(entries).match("https://contoso.com/x", now=NOW) is block


def test_allow_applies_when_no_block_matches() -> None:
    """An allow entry is returned when it is the only match."""
    allow = _entry("contoso.com/*", ALLOW)
    index = TablIndex([allow, _entry("fabrikam.com", BLOCK)])
    assert index.match("https://contoso.com/x", now=NOW) is allow
    assert index.match("https://other.com/", now=NOW) is None


def test_more_specific_block_is_reported() -> None:
    """Among several blocks, the one anchored on the longest host is reported."""
    broad = _entry("*.xyz/*", BLOCK)
    narrow = _entry("~evil.xyz", BLOCK)
    assert TablIndex([broad, narrow]).match("https://a.evil.xyz", now=NOW) is narrow


def test_index_finds_names_in_paths() -> None:
    """The index finds plain block names inside another URL's path or query."""
    block = _entry("contoso.com", BLOCK)
    tilde = _entry("~fabrikam.com~", BLOCK)
    index = TablIndex([block, tilde])
    assert index.match("https://t.com/go?to=payroll.contoso.com", now=NOW) is block
    assert index.match("https://t.com/fabrikam.com/x", now=NOW) is tilde
    assert index.match("https://t.com/?q=fabrikam.com", now=NOW) is None


def test_expired_entries_are_ignored() -> None:
    """An entry past its expiry date no longer matches."""
    block = _entry("contoso.com", BLOCK, expires_at=NOW - timedelta(seconds=1))
    assert TablIndex([block]).match("contoso.com", now=NOW) is None
    assert TablIndex([block]).match("contoso.com", now=NOW - timedelta(hours=1)) is block


def test_expired_block_does_not_hide_allow() -> None:
    """An expired block leaves a live allow for the same URL in force."""
    block = _entry("contoso.com", BLOCK, expires_at=NOW - timedelta(days=1))
    allow = _entry("contoso.com", ALLOW, expires_at=NOW + timedelta(days=1))
    assert TablIndex([block, allow]).match("contoso.com", now=NOW) is allow


def test_default_expiry_is_thirty_days() -> None:
    """New block and allow entries default to 30 days, as in the Defender portal."""
    assert default_expiry(BLOCK, NOW) == NOW + timedelta(days=30)
    assert default_expiry(ALLOW, NOW) == NOW + timedelta(days=30)


@pytest.mark.parametrize(
    ("action", "days", "ok"),
    [(BLOCK, 90, True), (BLOCK, 91, False), (ALLOW, 30, True), (ALLOW, 31, False)],
)
def test_expiry_limits(action: TablAction, days: int, ok: bool) -> None:
    """Blocks may be set up to 90 days ahead and allows up to 30, as in the portal."""
    when = NOW + timedelta(days=days)
    if ok:
        validate_expiry(action, when, NOW)
    else:
        with pytest.raises(TablError, match=f"at most {90 if action is BLOCK else 30} days"):
            validate_expiry(action, when, NOW)


def test_past_expiry_is_refused() -> None:
    """An expiry date in the past is refused."""
    with pytest.raises(TablError, match="past"):
        validate_expiry(BLOCK, NOW - timedelta(minutes=1), NOW)


def test_allow_without_date_lapses_45_days_after_last_use() -> None:
    """An undated allow follows RemoveAfter 45: it lapses 45 days after its last use."""
    used = NOW - REMOVE_AFTER_UNUSED + timedelta(hours=1)
    allow = TablEntry("contoso.com", ALLOW, created_at=NOW - timedelta(days=200), last_used_at=used)
    assert not is_expired(allow, NOW)
    assert is_expired(allow, NOW + timedelta(hours=2))
    never_used = TablEntry("contoso.com", ALLOW, created_at=NOW - timedelta(days=46))
    assert is_expired(never_used, NOW)


def test_block_without_date_never_expires() -> None:
    """An undated block entry ("Never expire") stays in force."""
    block = TablEntry("contoso.com", BLOCK, created_at=NOW - timedelta(days=3650))
    assert not is_expired(block, NOW)


def test_entry_normalises_and_validates_value() -> None:
    """A TablEntry keeps the normalised value and refuses invalid syntax."""
    assert TablEntry("Contoso.COM/", BLOCK, created_at=NOW).value == "contoso.com"
    with pytest.raises(TablError):
        TablEntry("*.contoso.com", ALLOW, created_at=NOW)


def test_index_lookup_is_fast_for_thousands_of_entries() -> None:
    """Lookups in a 10,000-entry index stay far below a millisecond each."""
    entries = [_entry(f"site{i}.example{i % 50}.com", BLOCK) for i in range(5000)]
    entries += [_entry(f"allowed{i}.org/path/*", ALLOW) for i in range(5000)]
    index = TablIndex(entries)
    assert len(index) == 10000
    urls = [f"https://www.site{i}.example{i % 50}.com/a/b?q=x.y" for i in range(0, 5000, 5)]
    start = time.perf_counter()
    for url in urls:
        assert index.match(url, now=NOW) is not None
    per_lookup = (time.perf_counter() - start) / len(urls)
    assert per_lookup < 0.0005
