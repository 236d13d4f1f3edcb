"""DoNotRewriteUrls: Defender's entry syntax table, wildcard limits and the documented choices."""

from __future__ import annotations

import pytest

from shared.urllists.do_not_rewrite import (
    RewriteExemptionError,
    RewriteExemptions,
    parse_exemption,
)

# (entry, url, exempt) -- Defender's entry syntax table and the notes under it.
TABLE: list[tuple[str, str, bool]] = [
    ("contoso.com", "https://contoso.com", True),
    ("contoso.com", "http://contoso.com/", True),
    ("contoso.com", "https://www.contoso.com", False),
    ("contoso.com", "https://contoso.com/a", False),
    ("*.contoso.com/*", "https://www.contoso.com", True),
    ("*.contoso.com/*", "https://maps.contoso.com", True),
    ("*.contoso.com/*", "https://www.contoso.com/a", True),
    ("*.contoso.com/*", "https://a.b.contoso.com/x/y?z=1", True),
    ("*.contoso.com/*", "https://contoso.com", False),
    ("*.contoso.com/*", "https://www.falsecontoso.com", False),
    ("*.contoso.com/*", "https://www.false.contoso.completelyfalse.com", False),
    ("*.contoso.com", "https://contoso.com", False),
    ("contoso.com/*", "https://contoso.com", True),
    ("contoso.com/*", "https://contoso.com/vdir1", True),
    ("contoso.com/*", "http://contoso.com/a/b?c=d", True),
    ("contoso.com/*", "https://www.contoso.com/a", False),
    ("https://contoso.com/a", "https://contoso.com/a", True),
    ("https://contoso.com/a", "https://contoso.com/a/b", False),
    ("https://contoso.com/a", "http://contoso.com/a", False),
    ("https://contoso.com/a/*", "https://contoso.com/a", True),
    ("https://contoso.com/a/*", "https://contoso.com/a/b", True),
    ("https://contoso.com/a/*", "https://contoso.com/ab", False),
    ("*contoso.com*", "https://www.falsecontoso.com", True),
    ("*contoso.com*", "https://www.false.contoso.completelyfalse.com", True),
]


@pytest.mark.parametrize(("entry", "url", "exempt"), TABLE)
def test_defender_entry_syntax_table(entry: str, url: str, exempt: bool) -> None:
    """Each entry covers exactly the URLs Defender's DoNotRewriteUrls table says it covers."""
    assert RewriteExemptions([entry]).matches(url) is exempt
    assert parse_exemption(entry).matches(url) is exempt


CHOICES: list[tuple[str, str, bool]] = [
    ("CONTOSO.com", "https://contoso.COM/", True),
    ("contoso.com/Docs/*", "https://contoso.com/docs/x", False),
    ("https://contoso.com/a", "https://contoso.com/a?x=1", False),
    ("https://contoso.com/a/*", "https://contoso.com/a?x=1", False),
    ("https://contoso.com/a/*", "https://contoso.com/a/?x=1", True),
    ("contoso.com", "https://contoso.com:8443/", False),
    ("contoso.com:8443", "https://contoso.com:8443/", True),
    ("contoso.com", "https://contoso.com:443/", True),
    ("contoso.com", "contoso.com", True),
    ("https://contoso.com", "contoso.com", False),
    ("*contoso.com*", "https://evil.com/?contoso.com", False),
    ("contoso.com/*/report/*", "https://contoso.com/x/y/report/z", True),
    ("contoso.com", "ftp://contoso.com/", False),
    ("xn--bcher-kva.de", "https://bücher.de/", True),
    ("[2001:DB8::1]", "http://[2001:db8:0::1]/", True),
]


@pytest.mark.parametrize(("entry", "url", "exempt"), CHOICES)
def test_documented_choices(entry: str, url: str, exempt: bool) -> None:
    """Case, query, port, scheme and host-wildcard rules behave as the module documents."""
    assert RewriteExemptions([entry]).matches(url) is exempt


INVALID: list[tuple[str, str]] = [
    ("", "empty"),
    ("   ", "empty"),
    ("*.a*.b*.c/*", "at most 3 wildcards"),
    ("*", "name a host"),
    ("*.*/*", "name a host"),
    ("ftp://contoso.com", "only http and https"),
    ("user@contoso.com", "user names and passwords"),
    ("contoso.com:0", "invalid port"),
    ("contoso.com:http", "invalid port"),
    ("con toso.com", "whitespace"),
    ("'contoso.com'", "quotes"),
    ("bücher.de", "Punycode"),
    ("contoso.com/#x", "fragments"),
    ("conto$o.com", "not a host name"),
    ("[nothex]/a", "invalid IPv6"),
    ("c" * 2050 + ".com", "longer than 2048"),
]


@pytest.mark.parametrize(("entry", "reason"), INVALID)
def test_invalid_entries_raise(entry: str, reason: str) -> None:
    """Unusable entries raise RewriteExemptionError (a ValueError) with the reason."""
    with pytest.raises(RewriteExemptionError, match=reason):
        parse_exemption(entry)
    assert issubclass(RewriteExemptionError, ValueError)


def test_three_wildcards_are_accepted() -> None:
    """Up to three '*' per entry are allowed."""
    assert parse_exemption("*.contoso.com/*/a/*").entry == "*.contoso.com/*/a/*"


def test_entries_are_normalised() -> None:
    """Entries keep a normalised form: lowercase scheme and host, no lone '/' path."""
    ex = RewriteExemptions(["HTTPS://Contoso.COM/", "contoso.com/A"])
    assert ex.entries == ("https://contoso.com", "contoso.com/A")
    assert len(ex) == 2


def test_empty_list_exempts_nothing() -> None:
    """A policy without DoNotRewriteUrls exempts no URL."""
    assert not RewriteExemptions([]).matches("https://contoso.com")


@pytest.mark.parametrize(
    "url", ["http://contoso.com:99999/", "http://contoso.com\x00/", "http://%zz.contoso.com/", "javascript:alert(1)"]
)
def test_url_no_browser_opens_is_never_exempt(url: str) -> None:
    """A URL the browser refuses is not exempt (it is wrapped, and the proxy refuses it), and nothing raises."""
    assert not RewriteExemptions(["contoso.com/*", "*.contoso.com/*"]).matches(url)


EXEMPTED_AS_THE_BROWSER_READS = [
    ("contoso.com/*", "http://evil.example\\@contoso.com/", False),
    ("evil.example/*", "http://evil.example\\@contoso.com/", True),
    ("contoso.com", "http://%63ontoso.com/", True),
    ("93.184.216.34/*", "http://0x5db8d822/x", True),
    ("93.184.216.34/*", "http://[::ffff:93.184.216.34]/x", True),
    ("xn--strae-login-y6a.example/*", "http://straße-login.example/a", True),
    ("strasse-login.example/*", "http://straße-login.example/a", False),
]


@pytest.mark.parametrize(("entry", "url", "expected"), EXEMPTED_AS_THE_BROWSER_READS)
def test_exemptions_match_the_host_the_browser_opens(entry: str, url: str, expected: bool) -> None:
    """Entries match the host a browser opens: '\\' ends the authority, escapes and IPv4 spellings decoded."""
    assert RewriteExemptions([entry]).matches(url) is expected


def test_glob_does_not_backtrack_on_long_urls() -> None:
    """Three-wildcard entries match long URLs in linear time (no regex backtracking)."""
    import time

    ex = parse_exemption("contoso.com/*a*a*b")
    assert ex.path is not None
    start = time.perf_counter()
    assert not ex.path.match("/" + "a" * 200_000)
    assert time.perf_counter() - start < 0.05
