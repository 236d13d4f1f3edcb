"""Finding links in Teams messages (plain text and Teams HTML), and the `url extract` command."""

from __future__ import annotations

import argparse
import io

import pytest

from safelinks.cli import url as url_cli
from shared.urls import extract_urls

PLAIN = [
    ("see https://example.com/a?b=1#c now", ["https://example.com/a?b=1#c"]),
    ("HTTPS://Example.com/X", ["HTTPS://Example.com/X"]),
    ("http://intranet/wiki", ["http://intranet/wiki"]),
    ("done: https://example.com.", ["https://example.com"]),
    ("really? https://example.com/x?!", ["https://example.com/x"]),
    (
        "list https://a.com, https://b.com; https://c.com: end",
        ["https://a.com", "https://b.com", "https://c.com"],
    ),
    ("https://en.wikipedia.org/wiki/Foo_(bar)", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
    ("(see https://en.wikipedia.org/wiki/Foo_(bar)).", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
    ("(https://example.com/x)", ["https://example.com/x"]),
    ("[https://example.com/x]", ["https://example.com/x"]),
    ("<https://example.com/x>", ["https://example.com/x"]),
    ('"https://example.com/x"', ["https://example.com/x"]),
    ("'https://example.com/x'", ["https://example.com/x"]),
    ("«https://example.com/x»", ["https://example.com/x"]),
    ("“https://example.com/x”", ["https://example.com/x"]),
    ("go to www.example.com/docs.", ["http://www.example.com/docs"]),
    ("WWW.Example.COM", ["http://WWW.Example.COM"]),
    ("(www.example.co.uk)", ["http://www.example.co.uk"]),
    ("example.co.uk/path!", ["http://example.co.uk/path"]),
    ("try host.io", ["http://host.io"]),
    ("ends at tailspin.io. and example.co.uk.", ["http://tailspin.io", "http://example.co.uk"]),
    ("example.com:8443/admin", ["http://example.com:8443/admin"]),
    ("EXAMPLE.COM", ["http://EXAMPLE.COM"]),
    ("example.in/jobs", ["http://example.in/jobs"]),
    ("bücher.de/katalog and пример.рф", ["http://bücher.de/katalog", "http://пример.рф"]),
    ("https://例え.jp/パス", ["https://例え.jp/パス"]),
    ("xn--e1afmkfd.xn--p1ai/a", ["http://xn--e1afmkfd.xn--p1ai/a"]),
    ("https://xn--bcher-kva.de/", ["https://xn--bcher-kva.de/"]),
    ("http://192.168.1.10:8080/x", ["http://192.168.1.10:8080/x"]),
    ("a https://x.com/ b https://x.com/ c", ["https://x.com/"]),
    ("b.com/1 then a.com/2 then b.com/1", ["http://b.com/1", "http://a.com/2"]),
]

TRAPS = [
    "setup.py",
    "README.md",
    "node.js",
    "config.yaml",
    "v1.2.3",
    "e.g.",
    "i.e. this",
    "pi is 3.14",
    "user@example.org",
    "first.last@mail.example.co.uk",
    "mailto:someone@example.com",
    "javascript:alert('x')",
    "data:text/html;base64,PGI+",
    "file:///C:/temp/a.html",
    "ftp://files.example.com/a",
    "src/main.rs and run.sh and lib.so",
    "docs/index.html",
    "I went home.It was late",
    "www.localhost",
    "xhttps://example.com",
    "",
    "no dots here at all",
]


@pytest.mark.parametrize(("text", "expected"), PLAIN)
def test_plain_text_links(text: str, expected: list[str]) -> None:
    """Scheme, www. and public-suffix bare links are found, trimmed and deduplicated in order."""
    assert extract_urls(text) == expected


@pytest.mark.parametrize("text", TRAPS)
def test_traps_are_not_links(text: str) -> None:
    """File names, versions, numbers, e-mail addresses and non-web schemes are not links."""
    assert extract_urls(text) == []


HTML = [
    (
        '<div><p>Look <a href="https://a.com/?x=1&amp;y=2" rel="noreferrer noopener" '
        'title="https://a.com/?x=1&amp;y=2" target="_blank">https://a.com/?x=1&amp;y=2</a></p></div>',
        ["https://a.com/?x=1&y=2"],
    ),
    (
        '<p>first www.first.com then <a href="https://second.com/">the second</a> '
        "and third.co.uk/x</p>",
        ["http://www.first.com", "https://second.com/", "http://third.co.uk/x"],
    ),
    (
        '<p><at id="0">Bob www.bob.com</at>&nbsp;see&nbsp;https://c.com/p&nbsp;now</p>',
        ["https://c.com/p"],
    ),
    (
        "<p>&lt;https://d.com/q&gt; &quot;https://e.com&quot;</p>",
        ["https://d.com/q", "https://e.com"],
    ),
    (
        '<p><a href="mailto:x@y.com">x@y.com</a> <a href="javascript:void(0)">https://f.com</a></p>',
        [],
    ),
    ("<p>www.g.com</p><p>next</p>", ["http://www.g.com"]),
    ("<a href='https://h.com/single'>h</a>", ["https://h.com/single"]),
    ('<A HREF="https://i.com/UPPER">i</A>', ["https://i.com/UPPER"]),
    (
        '<p>Wiki <a href="https://en.wikipedia.org/wiki/Foo_(bar)">Foo</a>.</p>',
        ["https://en.wikipedia.org/wiki/Foo_(bar)"],
    ),
    ("<p>setup.py and README.md, mail me at a@b.com</p>", []),
    ("<p>caf&eacute;.fr/menu</p>", ["http://café.fr/menu"]),
    # The href is any attribute so named, first or not, and only one with a value counts.
    ('<a title="x" href="https://j.com/later">j.org</a>', ["https://j.com/later"]),
    ('<a href href="https://k.com/second">k.org</a>', ["https://k.com/second"]),
    ('<a hreflang="en" href="https://l.com/">l.org</a>', ["https://l.com/"]),
    ('<a/href="https://m.com/slash">m.org</a>', ["https://m.com/slash"]),
    ('<a href = https://n.com/unquoted title="a>b">n.org</a>', ["https://n.com/unquoted"]),
    # An empty href is still the link's href: the text inside is what it shows, not a link.
    ("<a href=>o.com/inside</a> p.com", ["http://p.com"]),
    # A ">" inside a quoted value does not end the tag.
    ('<p title="q.com/x>y">r.com</p>', ["http://r.com"]),
    ('<a rel="x>" href="https://s.com/">t.com</a>', ["https://s.com/"]),
    # A tag whose quote never closes runs to the end of the message.
    ('u.com <a href="https://v.com/ w.com', ["http://u.com"]),
]


@pytest.mark.parametrize(("markup", "expected"), HTML)
def test_teams_html_links(markup: str, expected: list[str]) -> None:
    """HTML: <a href> counted once via its href; visible text scanned; mentions dropped."""
    assert extract_urls(markup, html=True) == expected


def test_plain_mode_does_not_read_markers() -> None:
    """A control character in plain text cannot smuggle in a pretend href."""
    assert extract_urls("\x01javascript:x\x01 \x01https://a.com\x01") == ["https://a.com"]


def test_extract_command_prints_one_url_per_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """`url extract --html` reads stdin and prints each link on its own line."""
    parser = argparse.ArgumentParser(prog="safelinks")
    url_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["url", "extract", "--html"])
    out = io.StringIO()
    monkeypatch.setattr("sys.stdin", io.StringIO('<p><a href="https://a.com">a</a> www.b.com</p>'))
    monkeypatch.setattr("sys.stdout", out)
    assert args.func(args) == 0
    assert out.getvalue() == "https://a.com\nhttp://www.b.com\n"
