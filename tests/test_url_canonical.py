"""Safe Browsing canonical form, lookup expressions, entry coverage and registrable domains."""

from __future__ import annotations

import subprocess
import sys

import pytest

from shared.urls import (
    InvalidURL,
    URLError,
    canonicalize,
    covers,
    expression_of,
    expressions,
    is_ip,
    registrable_domain,
)

# Every example of "URLs and Hashing" (Safe Browsing v4 documentation, Canonicalization), verbatim.
GOOGLE_V4_CANONICALIZATION = [
    ("http://host/%25%32%35", "http://host/%25"),
    ("http://host/%25%32%35%25%32%35", "http://host/%25%25"),
    ("http://host/%2525252525252525", "http://host/%25"),
    ("http://host/asdf%25%32%35asd", "http://host/asdf%25asd"),
    ("http://host/%%%25%32%35asd%%", "http://host/%25%25%25asd%25%25"),
    ("http://www.google.com/", "http://www.google.com/"),
    (
        "http://%31%36%38%2e%31%38%38%2e%39%39%2e%32%36/%2E%73%65%63%75%72%65/%77%77%77%2E%65%62%61%79%2E%63%6F%6D/",
        "http://168.188.99.26/.secure/www.ebay.com/",
    ),
    (
        "http://195.127.0.11/uploads/%20%20%20%20/.verify/.eBaysecure=updateuserdataxplimnbqmn-xplmvalidateinfoswqpcmlx=hgplmcx/",
        "http://195.127.0.11/uploads/%20%20%20%20/.verify/.eBaysecure=updateuserdataxplimnbqmn-xplmvalidateinfoswqpcmlx=hgplmcx/",
    ),
    (
        "http://host%23.com/%257Ea%2521b%2540c%2523d%2524e%25f%255E00%252611%252A22%252833%252944_55%252B",
        "http://host%23.com/~a!b@c%23d$e%25f^00&11*22(33)44_55+",
    ),
    ("http://3279880203/blah", "http://195.127.0.11/blah"),
    ("http://www.google.com/blah/..", "http://www.google.com/"),
    ("www.google.com/", "http://www.google.com/"),
    ("www.google.com", "http://www.google.com/"),
    ("http://www.evil.com/blah#frag", "http://www.evil.com/blah"),
    ("http://www.GOOgle.com/", "http://www.google.com/"),
    ("http://www.google.com.../", "http://www.google.com/"),
    ("http://www.google.com/foo\tbar\rbaz\n2", "http://www.google.com/foobarbaz2"),
    ("http://www.google.com/q?", "http://www.google.com/q?"),
    ("http://www.google.com/q?r?", "http://www.google.com/q?r?"),
    ("http://www.google.com/q?r?s", "http://www.google.com/q?r?s"),
    ("http://evil.com/foo#bar#baz", "http://evil.com/foo"),
    ("http://evil.com/foo;", "http://evil.com/foo;"),
    ("http://evil.com/foo?bar;", "http://evil.com/foo?bar;"),
    ("http://\x01\x80.com/", "http://%01%80.com/"),
    ("http://notrailingslash.com", "http://notrailingslash.com/"),
    ("http://www.gotaport.com:1234/", "http://www.gotaport.com/"),
    ("  http://www.google.com/  ", "http://www.google.com/"),
    ("http:// leadingspace.com/", "http://%20leadingspace.com/"),
    ("http://%20leadingspace.com/", "http://%20leadingspace.com/"),
    ("%20leadingspace.com/", "http://%20leadingspace.com/"),
    ("https://www.securesite.com/", "https://www.securesite.com/"),
    ("http://host.com/ab%23cd", "http://host.com/ab%23cd"),
    ("http://host.com//twoslashes?more//slashes", "http://host.com/twoslashes?more//slashes"),
]

# Further cases from the reference clients' test tables (gglsbl, google/safebrowsing) and ours.
MORE_CANONICALIZATION = [
    ("http://0xc37f000b/blah", "http://195.127.0.11/blah"),
    (
        "http://www.wtp101.com/bk?redir=http%3A%2F%2Ftags.bluekai.com%2Fsite%2F2750%3Fid%3D%3CPARTNER_UUID%3E%0D%0A%26redir%3Dhttp%3A%2F%2Fwww.wtp101.com%2Fpush%2Fbluekai%3Fxid%3D%24BK_UUID",
        "http://www.wtp101.com/bk?redir=http://tags.bluekai.com/site/2750?id=<PARTNER_UUID>%0D%0A&redir=http://www.wtp101.com/push/bluekai?xid=$BK_UUID",
    ),
    ("http://www.\u00fcmlat.com/", "http://www.xn--mlat-zra.com/"),
    ("http://[2001:470:1:18::114]/", "http://[2001:470:1:18::114]/"),
    (
        "http://[FEDC:BA98:7654:3210:FEDC:BA98:7654:3210]:80/i",
        "http://[fedc:ba98:7654:3210:fedc:ba98:7654:3210]/i",
    ),
    ("http://[2001:0db8:0000:0000:0000:0000:0000:0001]/", "http://[2001:db8::1]/"),
    ("http://[::192.9.5.5]/ipng", "http://[::192.9.5.5]/ipng"),
    ("http%3A%2F%2Fwackyurl.com:80/", "http://wackyurl.com/"),
    ("http://W!eird<>Ho$^.com/", "http://w!eird<>ho$^.com/"),
    ("http://i.have.way.too.many.dots.com/", "http://i.have.way.too.many.dots.com/"),
    ("http://a.com/foo/.././bar/./../foo.html", "http://a.com/foo.html"),
    ("http://a.com//a//b///c////", "http://a.com/a/b/c/"),
    ("http://google.com.:8080/foo.html", "http://google.com/foo.html"),
    ("http://..google.com/foo.html", "http://google.com/foo.html"),
    ("http://user:pw@Example.COM:8443/x", "http://example.com/x"),
    ("HTTPS://Example.com?x=1", "https://example.com/?x=1"),
    ("http://bücher.de/straße", "http://xn--bcher-kva.de/stra%C3%9Fe"),
    ("http://пример.рф/", "http://xn--e1afmkfd.xn--p1ai/"),
    ("http://example.com/a b", "http://example.com/a%20b"),
    ("http://example.com/%7e/%41", "http://example.com/~/A"),
]

GOOGLE_IPV4_FORMS = [
    ("255.0.0.1", "255.0.0.1"),
    ("12.0x12.01234", "12.18.2.156"),
    ("276.2.3", "20.2.0.3"),
    ("012.034.01.055", "10.28.1.45"),
    ("0x12.0x43.0x44.0x01", "18.67.68.1"),
    ("167838211", "10.1.2.3"),
    ("3279880203", "195.127.0.11"),
    ("4294967295", "255.255.255.255"),
    ("10.192.95.89 xy", "10.192.95.89"),
]

# Google's "not an IPv4 address" rows. Where the last label is a number, the URL Standard reads the
# host as IPv4 and a browser refuses these: they are refused, not kept as names.
NOT_IPV4_NAMES = ["1.2.3.00x0"]
NOT_IPV4_REFUSED = ["123.123.0.0.1", "4294967296", "08.1.2.3"]

INVALID = [
    "",
    ":",
    "/blah",
    "#ref",
    "/blah#ref",
    "?query#ref",
    "/blah?query#ref",
    "/blah;param",
    "http://#ref",
    "http://?query#ref",
    "mailto:bryner@google.com",
    "javascript:alert(1)",
    "javascript%3Aalert(1)",
    "data:text/html,<b>x</b>",
    "file:///etc/passwd",
    "ftp://ftp.myfiles.com/",
    "http://...../",
    "http://example.com:80x/",
    "http://example.com/" + "a" * 8200,
]


# Rows of the tables above whose input a browser refuses (URL Standard): a host holding a forbidden
# code point ("#", controls, space, "<", ">", "^", a percent-decoded ":" or "/"), an IPv4 part over
# 255, an IPv4 with trailing junk. Safe Browsing canonicalises them; a browser opens nothing, so
# the proxy refuses them with a 4xx page rather than judge a host no one can reach.
BROWSER_REFUSES = {
    "http://host%23.com/%257Ea%2521b%2540c%2523d%2524e%25f%255E00%252611%252A22%252833%252944_55%252B",
    "http://\x01\x80.com/",
    "http:// leadingspace.com/",
    "http://%20leadingspace.com/",
    "%20leadingspace.com/",
    "http%3A%2F%2Fwackyurl.com:80/",
    "http://W!eird<>Ho$^.com/",
    "276.2.3",
    "10.192.95.89 xy",
}
# Rows where the browser reads the input differently: the canonical form follows the browser.
BROWSER_READS = {
    # The URL Standard serialises an IPv4-compatible IPv6 address in hex, not dotted.
    "http://[::192.9.5.5]/ipng": "http://[::c009:505]/ipng",
}


def _published(table: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(u, BROWSER_READS.get(u, e)) for u, e in table if u not in BROWSER_REFUSES]


@pytest.mark.parametrize(("url", "expected"), _published(GOOGLE_V4_CANONICALIZATION))
def test_google_v4_examples(url: str, expected: str) -> None:
    """Every example of Google's Safe Browsing v4 canonicalization table a browser opens comes out as published."""
    assert canonicalize(url) == expected


@pytest.mark.parametrize(
    "url", sorted(BROWSER_REFUSES & {u for u, _ in GOOGLE_V4_CANONICALIZATION + MORE_CANONICALIZATION})
)
def test_rows_a_browser_refuses_are_refused(url: str) -> None:
    """A published row whose URL a browser refuses to parse is refused, not canonicalised."""
    with pytest.raises(InvalidURL):
        canonicalize(url)


@pytest.mark.parametrize(("url", "expected"), _published(MORE_CANONICALIZATION))
def test_further_canonical_forms(url: str, expected: str) -> None:
    """IDN, IPv6, userinfo, ports, dot segments and escapes follow the Safe Browsing rules."""
    assert canonicalize(url) == expected


@pytest.mark.parametrize(("host", "expected"), [r for r in GOOGLE_IPV4_FORMS if r[0] not in BROWSER_REFUSES])
def test_ipv4_spellings_become_dotted_decimal(host: str, expected: str) -> None:
    """Octal, hex, short and integer IPv4 hosts become four dotted decimals."""
    assert canonicalize(f"http://{host}/") == f"http://{expected}/"


@pytest.mark.parametrize("host", sorted(BROWSER_REFUSES & {h for h, _ in GOOGLE_IPV4_FORMS}))
def test_ipv4_spellings_a_browser_refuses(host: str) -> None:
    """An IPv4 spelling the URL Standard refuses (a part over 255, trailing junk) is refused."""
    with pytest.raises(InvalidURL):
        canonicalize(f"http://{host}/")


@pytest.mark.parametrize("host", NOT_IPV4_NAMES)
def test_non_addresses_stay_names(host: str) -> None:
    """Hosts that only look numeric, and do not end in a number, are kept as names."""
    assert canonicalize(f"http://{host}/") == f"http://{host}/"


@pytest.mark.parametrize("host", NOT_IPV4_REFUSED)
def test_numeric_hosts_that_are_no_address_are_refused(host: str) -> None:
    """A host ending in a number must be a valid IPv4 address (URL Standard), else it is refused."""
    with pytest.raises(InvalidURL):
        canonicalize(f"http://{host}/")


# Google lists these as invalid; a browser skips the extra slashes and opens the host "blah".
EXTRA_SLASHES = [
    ("http:///blah#ref", "http://blah/"),
    ("http:///blah?query#ref", "http://blah/?query"),
    ("http:///blah;param", "http://blah;param/"),
    ("http:///blah;param?query#ref", "http://blah;param/?query"),
]


@pytest.mark.parametrize(("url", "expected"), EXTRA_SLASHES)
def test_extra_slashes_are_read_as_the_browser_reads_them(url: str, expected: str) -> None:
    """'http:///blah' opens host 'blah' in a browser, so it is judged as that host."""
    assert canonicalize(url) == expected


@pytest.mark.parametrize("url", INVALID)
def test_invalid_inputs_raise(url: str) -> None:
    """No host, a non-web scheme, a bad port or more than 8 KB raise InvalidURL (a URLError)."""
    with pytest.raises(InvalidURL) as caught:
        canonicalize(url)
    assert isinstance(caught.value, URLError)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("url", [u for u, _ in _published(GOOGLE_V4_CANONICALIZATION + MORE_CANONICALIZATION)])
def test_canonical_form_is_a_fixed_point(url: str) -> None:
    """Canonicalising a canonical URL changes nothing."""
    once = canonicalize(url)
    assert canonicalize(once) == once


EXPRESSIONS = [
    (
        "http://a.b.c/1/2.html?param=1",
        [
            "a.b.c/1/2.html?param=1",
            "a.b.c/1/2.html",
            "a.b.c/",
            "a.b.c/1/",
            "b.c/1/2.html?param=1",
            "b.c/1/2.html",
            "b.c/",
            "b.c/1/",
        ],
    ),
    (
        "http://a.b.c.d.e.f.g/1.html",
        [
            "a.b.c.d.e.f.g/1.html",
            "a.b.c.d.e.f.g/",
            "c.d.e.f.g/1.html",
            "c.d.e.f.g/",
            "d.e.f.g/1.html",
            "d.e.f.g/",
            "e.f.g/1.html",
            "e.f.g/",
            "f.g/1.html",
            "f.g/",
        ],
    ),
    ("http://1.2.3.4/1/", ["1.2.3.4/1/", "1.2.3.4/"]),
    (
        "http://1.2.3.4/1/2.html?param=1",
        ["1.2.3.4/1/2.html?param=1", "1.2.3.4/1/2.html", "1.2.3.4/", "1.2.3.4/1/"],
    ),
    (
        "http://a.b.c/1/2/3/4/5/6/7.html?param=1",
        [
            "a.b.c/1/2/3/4/5/6/7.html?param=1",
            "a.b.c/1/2/3/4/5/6/7.html",
            "a.b.c/",
            "a.b.c/1/",
            "a.b.c/1/2/",
            "a.b.c/1/2/3/",
            "b.c/1/2/3/4/5/6/7.html?param=1",
            "b.c/1/2/3/4/5/6/7.html",
            "b.c/",
            "b.c/1/",
            "b.c/1/2/",
            "b.c/1/2/3/",
        ],
    ),
    ("http://a.b/", ["a.b/"]),
    ("http://a.b/?", ["a.b/"]),
    ("http://b/", ["b/"]),
    (
        "http://a.b.c.d.e/1.html",
        [
            "a.b.c.d.e/1.html",
            "a.b.c.d.e/",
            "b.c.d.e/1.html",
            "b.c.d.e/",
            "c.d.e/1.html",
            "c.d.e/",
            "d.e/1.html",
            "d.e/",
        ],
    ),
    (
        "http://[2001:470:1:18::114]/a/b",
        ["[2001:470:1:18::114]/a/b", "[2001:470:1:18::114]/", "[2001:470:1:18::114]/a/"],
    ),
    (
        "http://a.b.c/1/2/3/4/5/",
        [
            "a.b.c/1/2/3/4/5/",
            "a.b.c/",
            "a.b.c/1/",
            "a.b.c/1/2/",
            "a.b.c/1/2/3/",
            "b.c/1/2/3/4/5/",
            "b.c/",
            "b.c/1/",
            "b.c/1/2/",
            "b.c/1/2/3/",
        ],
    ),
]


@pytest.mark.parametrize(("url", "expected"), EXPRESSIONS)
def test_expressions(url: str, expected: list[str]) -> None:
    """Host suffixes (exact + 4 from the last 5 labels, no TLD, none for IPs) by path prefixes."""
    assert expressions(url) == expected


def test_expressions_never_exceed_thirty() -> None:
    """A deep host and a deep path with a query give exactly the 5 by 6 = 30 maximum."""
    found = expressions("http://a.b.c.d.e.f.g.h/1/2/3/4/5/6.html?q=1")
    assert len(found) == 30
    assert len(set(found)) == 30


def test_expressions_of_invalid_url_raise() -> None:
    """Expressions of a URL without a canonical form raise InvalidURL."""
    with pytest.raises(InvalidURL):
        expressions("javascript:alert(1)")


ENTRY_EXPRESSIONS = [
    ("example.com", "example.com/"),
    ("EXAMPLE.com.", "example.com/"),
    ("https://Example.com/Login/?a=1#top", "example.com/Login/?a=1"),
    ("example.com/dir/", "example.com/dir/"),
    ("http://bücher.de", "xn--bcher-kva.de/"),
    ("http://example.com/page?", "example.com/page"),
]


@pytest.mark.parametrize(("entry", "expected"), ENTRY_EXPRESSIONS)
def test_expression_of_entry(entry: str, expected: str) -> None:
    """A feed entry becomes one scheme-less expression of its canonical form."""
    assert expression_of(entry) == expected


COVERAGE = [
    ("example.com", "http://example.com/", True),
    ("example.com", "https://a.b.example.com/x/y?z=1", True),
    ("example.com", "https://notexample.com/", False),
    ("example.com", "https://example.com.evil.net/", False),
    ("example.com/dir/", "http://example.com/dir/", True),
    ("example.com/dir/", "http://example.com/dir/sub/page.html?q", True),
    ("example.com/dir/", "http://www.example.com/dir/a", True),
    ("example.com/dir/", "http://example.com/other/", False),
    ("example.com/dir/", "http://example.com/directory", False),
    ("example.com/a.html", "http://example.com/a.html", True),
    ("example.com/a.html", "http://example.com/a.html?x=1", True),
    ("example.com/a.html", "http://example.com/a.html/b", False),
    ("example.com/a.html?x=1", "http://example.com/a.html?x=1", True),
    ("example.com/a.html?x=1", "http://example.com/a.html?x=2", False),
    ("example.com/a.html?x=1", "http://example.com/a.html", False),
    ("1.2.3.4", "http://1.2.3.4/anything", True),
    ("2.3.4", "http://1.2.3.4/", False),
]


@pytest.mark.parametrize(("entry", "url", "expected"), COVERAGE)
def test_entry_coverage(entry: str, url: str, expected: bool) -> None:
    """Bare domain → host+subdomains+all paths; trailing '/' → prefix; otherwise that URL."""
    assert covers(entry, url) is expected


REGISTRABLE = [
    ("a.b.example.co.uk", "example.co.uk"),
    ("Example.COM.", "example.com"),
    ("bücher.de", "bücher.de"),
    ("www.xn--bcher-kva.de", "xn--bcher-kva.de"),
    ("foo.kita.tokyo.jp", "foo.kita.tokyo.jp"),
    ("192.168.0.1", "192.168.0.1"),
    ("[2001:db8::1]", "[2001:db8::1]"),
    ("localhost", "localhost"),
    ("co.uk", "co.uk"),
]


@pytest.mark.parametrize(("host", "expected"), REGISTRABLE)
def test_registrable_domain(host: str, expected: str) -> None:
    """eTLD+1 per the bundled Public Suffix List; IPs and suffix-only hosts come back as is."""
    assert registrable_domain(host) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [("1.2.3.4", True), ("[::1]", True), ("::1", True), ("1.2.3", False), ("a.com", False)],
)
def test_is_ip(host: str, expected: bool) -> None:
    """is_ip accepts dotted IPv4 and (bracketed) IPv6 only."""
    assert is_ip(host) is expected


def test_suffix_list_is_read_without_network() -> None:
    """The Public Suffix List comes from the bundled snapshot even when every socket fails."""
    program = (
        "import socket\n"
        "def refuse(*a, **k):\n"
        "    raise OSError('network used')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "socket.getaddrinfo = refuse\n"
        "from shared.urls import registrable_domain\n"
        "from shared.urls.domains import public_suffix_labels\n"
        "assert registrable_domain('x.example.co.uk') == 'example.co.uk'\n"
        "assert 'uk' in public_suffix_labels() and 'xn--p1ai' in public_suffix_labels()\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert "network used" not in done.stderr


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    import argparse

    from safelinks.cli import url as url_cli

    parser = argparse.ArgumentParser(prog="safelinks")
    url_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    code = args.func(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_canon_command_reports_every_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    """`url canon` prints each canonical form, names each invalid input, then exits 2."""
    code, out, err = _run_cli(
        ["url", "canon", "http://www.GOOgle.com", "javascript:x", "3279880203/blah", "mailto:a@b"],
        capsys,
    )
    assert code == 2
    assert out == "http://www.google.com/\nhttp://195.127.0.11/blah\n"
    assert "'javascript:x'" in err and "'mailto:a@b'" in err


def test_canon_command_succeeds_on_good_input(capsys: pytest.CaptureFixture[str]) -> None:
    """`url canon` exits 0 when every input is a URL."""
    assert _run_cli(["url", "canon", "example.com"], capsys) == (0, "http://example.com/\n", "")


def test_expressions_command_lines_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    """`url expressions` prints one per line, or a JSON list with --json."""
    import json

    code, out, _ = _run_cli(["url", "expressions", "http://a.b.c/1/2.html?param=1"], capsys)
    assert code == 0
    assert out.splitlines() == EXPRESSIONS[0][1]
    code, out, _ = _run_cli(["url", "expressions", "--json", "http://a.b/"], capsys)
    assert (code, json.loads(out)) == (0, ["a.b/"])
    code, out, err = _run_cli(["url", "expressions", "file:///x"], capsys)
    assert (code, out) == (2, "") and "file:///x" in err
