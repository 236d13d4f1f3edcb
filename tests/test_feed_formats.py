"""Feed parsers: every layout, bad lines counted, broken downloads refused."""

from __future__ import annotations

import bz2
import gzip
import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.feeds import FeedEntry, FeedFormat, FeedFormatError, parse_feed
from shared.feeds.formats import unpack

DATA = Path(__file__).parent / "data" / "feeds"


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.mark.parametrize(
    ("sample", "fmt", "column", "values", "bad", "skipped"),
    [
        (
            "urlhaus.csv",
            FeedFormat.URLHAUS_CSV,
            None,
            [
                "http://198.51.100.23:40123/i",
                "https://cdn.evil.example/payload/loader.exe",
                "http://files.badhost.test/docs/invoice.zip?id=77",
                "http://dropper.malware.invalid/bin.sh",
            ],
            1,
            0,
        ),
        (
            "urlhaus-online.txt",
            FeedFormat.URLHAUS_TEXT,
            None,
            [
                "http://198.51.100.23:40123/i",
                "https://cdn.evil.example/payload/loader.exe",
                "http://dropper.malware.invalid/bin.sh",
                "http://203.0.113.9/arm7",
            ],
            0,
            0,
        ),
        (
            "openphish.txt",
            FeedFormat.OPENPHISH,
            None,
            [
                "https://login-microsoft.phish.example/owa/auth.php",
                "https://secure-update.bank.test/verify/index.html",
                "http://xn--pypal-4ve.example/signin",
                "https://docs.share.invalid/s/abc123?session=9",
            ],
            0,
            0,
        ),
        (
            "phishtank.json",
            FeedFormat.PHISHTANK_JSON,
            None,
            [
                "https://paypal.account-check.example/webapps/",
                "http://m365-login.phish.test/common/oauth2",
                "https://bank.invalid/login?next=%2Faccount",
            ],
            1,
            1,
        ),
        (
            "phishtank.csv",
            FeedFormat.PHISHTANK_CSV,
            None,
            [
                "https://paypal.account-check.example/webapps/",
                "http://m365-login.phish.test/common/oauth2",
                "https://bank.invalid/login?next=%2Faccount&a=1,2",
            ],
            0,
            1,
        ),
        (
            "plain.txt",
            FeedFormat.PLAIN,
            None,
            [
                "evil.example",
                "badhost.test",
                "http://phish.invalid/login/",
                "https://cdn.evil.example/x.js?v=2",
                "sub.domain.malware.example/path/",
            ],
            1,
            0,
        ),
        (
            "custom.csv",
            FeedFormat.CSV_COLUMN,
            "indicator",
            ["http://c2.evil.example/gate.php", "badhost.test", "https://phish.invalid/login/"],
            0,
            0,
        ),
    ],
)
def test_sample_feeds_parse(
    sample: str, fmt: FeedFormat, column: str | None, values: list[str], bad: int, skipped: int
) -> None:
    """Each sample yields exactly its good entries, counting bad and skipped records apart."""
    result = parse_feed(load(sample), fmt, column=column)
    assert [e.value for e in result.entries] == values
    assert result.bad_lines == bad
    assert len(result.bad_examples) == bad
    assert result.skipped == skipped


def test_urlhaus_csv_fields() -> None:
    """URLhaus rows carry the threat, the date added (UTC) and the URLhaus link."""
    entry = parse_feed(load("urlhaus.csv"), FeedFormat.URLHAUS_CSV).entries[1]
    assert entry == FeedEntry(
        "https://cdn.evil.example/payload/loader.exe",
        "malware",
        datetime(2026, 11, 29, 11, 41, 17, tzinfo=UTC),
        "https://urlhaus.abuse.ch/url/3300002/",
    )


def test_urlhaus_bad_line_example_names_line_number() -> None:
    """A bad row is reported with its line number."""
    result = parse_feed(load("urlhaus.csv"), FeedFormat.URLHAUS_CSV)
    assert result.bad_examples[0].startswith("line 13: not a URL")


def test_phishtank_json_fields() -> None:
    """PhishTank entries are phishing, with submission time and detail page."""
    entry = parse_feed(load("phishtank.json"), FeedFormat.PHISHTANK_JSON).entries[0]
    assert entry.threat == "phishing"
    assert entry.first_seen == datetime(2026, 11, 29, 9, 12, tzinfo=UTC)
    assert entry.reference == "http://www.phishtank.com/phish_detail.php?phish_id=8500001"


@pytest.mark.parametrize(
    ("fmt", "threat"),
    [
        (FeedFormat.OPENPHISH, "phishing"),
        (FeedFormat.URLHAUS_TEXT, "malware"),
        (FeedFormat.PLAIN, "malicious"),
    ],
)
def test_default_threat_per_format(fmt: FeedFormat, threat: str) -> None:
    """Line formats name the threat their source stands for."""
    assert parse_feed(b"http://a.example/x\n", fmt).entries[0].threat == threat


def test_default_threat_override() -> None:
    """A configured threat replaces the format default."""
    result = parse_feed(b"evil.example\n", FeedFormat.PLAIN, default_threat="phishing")
    assert result.entries[0].threat == "phishing"


@pytest.mark.parametrize(
    ("data", "fmt", "message"),
    [
        (load("phishtank-truncated.json"), FeedFormat.PHISHTANK_JSON, "malformed JSON"),
        (load("urlhaus-truncated.csv"), FeedFormat.URLHAUS_CSV, "truncated"),
        (load("error-page.html"), FeedFormat.OPENPHISH, "HTML"),
        (load("error-page.html"), FeedFormat.PHISHTANK_JSON, "HTML"),
        (b"", FeedFormat.PLAIN, "empty"),
        (b"  \n\n", FeedFormat.URLHAUS_TEXT, "empty"),
        (b"# only comments\n# here\n", FeedFormat.URLHAUS_TEXT, "no usable entries"),
        (b"a b\nc d\nhttp://ok.example/\n", FeedFormat.OPENPHISH, "more than 50%"),
        (b'{"url": "http://a.example/"}', FeedFormat.PHISHTANK_JSON, "must be an array"),
        (b"x,y\n1,2\n", FeedFormat.CSV_COLUMN, "needs column"),
        (b"phish_id,link\n1,http://a.example/\n", FeedFormat.PHISHTANK_CSV, "no column 'url'"),
        (b"\x00\x01\x02\xff\xfe binary", FeedFormat.PLAIN, "no usable entries"),
        (gzip.compress(b"http://a.example/\n" * 50)[:-12], FeedFormat.OPENPHISH, "truncated"),
    ],
)
def test_broken_downloads_raise(data: bytes, fmt: FeedFormat, message: str) -> None:
    """A body that is not a whole feed raises FeedFormatError, never a partial result."""
    column = "url" if fmt is FeedFormat.CSV_COLUMN and b"x,y" not in data else None
    with pytest.raises(FeedFormatError, match=message):
        parse_feed(data, fmt, column=column)


def test_cut_last_line_without_newline_is_truncation_but_complete_one_is_not() -> None:
    """A complete last row without a trailing newline is accepted; a cut one is not."""
    whole = load("urlhaus.csv").rstrip(b"\n")
    assert len(parse_feed(whole, FeedFormat.URLHAUS_CSV).entries) == 4
    with pytest.raises(FeedFormatError, match="last line"):
        parse_feed(whole[:-5], FeedFormat.URLHAUS_CSV)


def test_bad_ratio_threshold_is_configurable() -> None:
    """The tolerated share of bad lines is a parameter."""
    data = b"nope\nhttp://a.example/\n"
    assert len(parse_feed(data, FeedFormat.OPENPHISH, max_bad_ratio=0.5).entries) == 1
    with pytest.raises(FeedFormatError):
        parse_feed(data, FeedFormat.OPENPHISH, max_bad_ratio=0.4)


def test_invalid_utf8_line_is_a_bad_line() -> None:
    """One undecodable line is counted as bad; the rest of the feed stands."""
    data = b"http://a.example/\nhttp://b.example/\xff\xfe\nhttp://c.example/\n"
    result = parse_feed(data, FeedFormat.OPENPHISH)
    assert [e.value for e in result.entries] == ["http://a.example/", "http://c.example/"]
    assert result.bad_examples[0].startswith("line 2: not UTF-8")


def test_crlf_and_bom_are_tolerated() -> None:
    """Windows line endings and a UTF-8 BOM do not make lines bad."""
    result = parse_feed(b"\xef\xbb\xbfhttp://a.example/\r\nevil.example\r\n", FeedFormat.PLAIN)
    assert [e.value for e in result.entries] == ["http://a.example/", "evil.example"]
    assert result.bad_lines == 0


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in members.items():
            archive.writestr(name, body)
    return buf.getvalue()


@pytest.mark.parametrize(
    "pack",
    [gzip.compress, bz2.compress, lambda b: _zip({"csv.txt": b})],
    ids=["gzip", "bzip2", "zip"],
)
def test_compressed_feeds_are_unpacked(pack: object) -> None:
    """URLhaus zip and PhishTank gz/bz2 downloads parse like the plain body."""
    body = load("urlhaus.csv")
    assert callable(pack)
    result = parse_feed(pack(body), FeedFormat.URLHAUS_CSV)
    assert result == parse_feed(body, FeedFormat.URLHAUS_CSV)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (gzip.compress(b"a" * 10_000), "more than 1000 bytes"),
        (bz2.compress(b"a" * 10_000), "more than 1000 bytes"),
        (_zip({"a.txt": b"a" * 10_000}), "more than 1000 bytes"),
        (_zip({"a.txt": b"x", "b.txt": b"y"}), "exactly one file"),
        (b"PK\x03\x04garbage", "corrupt"),
    ],
)
def test_unpack_limits(data: bytes, message: str) -> None:
    """Decompression is bounded and a zip must hold one file."""
    with pytest.raises(FeedFormatError, match=message):
        unpack(data, 1000)


def test_unknown_format_is_rejected() -> None:
    """An unknown format name is a ValueError from the enum, before any parsing."""
    with pytest.raises(ValueError):
        parse_feed(b"http://a.example/", "rss")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("line", "good"),
    [("evil.com", True), ("https://login.evil.co.uk/x", True), ("backup.zip", True), ("bücher.de", True),
     ("http://user:pw@bad.com:8080/x", True), ("http://10.0.0.1/x", True), ("http://[2001:db8::1]/", True),
     ("http://3232235777/", True), ("phish.test", True), ("evil.com.", True),
     ("readme.txt", False), ("printer.lan", False), ("http://intranet/", False), ("http://a.b.local/", False),
     ("http://localhost:8080/", False), ("index.html", False), ("setup.exe/", False)],
)
def test_hosts_need_a_public_suffix_or_an_address(line: str, good: bool) -> None:
    """A host that is neither an IP address nor under a public suffix is a bad line, with the reason."""
    body = ("real.example\n" * 4 + line + "\n").encode()
    result = parse_feed(body, FeedFormat.PLAIN)
    assert (result.bad_lines == 0) is good
    if not good:
        assert "public suffix" in result.bad_examples[0]
