"""How a click's URL is read: the gate on clicks posted through the API, and the click log's host index."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from shared.alerts.ingest import ClickRecordError, click_from_record
from shared.clicks import reversed_host
from shared.store.clicks import url_rhost
from shared.urls import InvalidURL, parse

WPT = Path(__file__).parent / "data" / "wpt-url"
_NOT_WRITTEN = "is not an http, https or ftp URL"
_NOT_A_URL = "is not a URL"


@pytest.mark.parametrize(
    ("url", "outcome"),
    [
        ("https://a.contoso.com/x", "https://a.contoso.com/x"),
        ("https://a.contoso.com", "https://a.contoso.com"),
        ("HTTP://A.Contoso.COM./x", "HTTP://A.Contoso.COM./x"),
        ("http://user@a.contoso.com:8080/", "http://user@a.contoso.com:8080/"),
        ("http://%61.contoso.com/", "http://%61.contoso.com/"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("http://a.contoso.com\\x", "http://a.contoso.com\\x"),
        (" http://a.contoso.com/", " http://a.contoso.com/"),
        # Written without "scheme://host": a browser would make a link of some, a record may not.
        ("example.com/x", _NOT_WRITTEN),
        ("//a.contoso.com/x", _NOT_WRITTEN),
        ("http:example.com", _NOT_WRITTEN),
        ("http:///example.com", _NOT_WRITTEN),
        ("http://[::1/", _NOT_WRITTEN),
        ("http://[zz]/", _NOT_WRITTEN),
        ("mailto:a@contoso.com", _NOT_WRITTEN),
        ("javascript:alert(1)", _NOT_WRITTEN),
        # Written well, refused by the URL model: not http(s), or not what a browser opens.
        ("ftp://files.contoso.com/a", _NOT_A_URL + ": invalid URL 'ftp://files.contoso.com/a': scheme 'ftp'"),
        ("http://a b.com/", _NOT_A_URL),
        ("http://a.com:99999/", _NOT_A_URL),
        ("http://./", _NOT_A_URL),
    ],
)
def test_a_posted_url_is_kept_as_sent_or_refused(url: str, outcome: str) -> None:
    """A posted Url must be written scheme://host and be http(s) to the URL model; it is kept as sent."""
    record = {"Url": url, "Timestamp": "2026-11-01T12:00:00Z"}
    if outcome.startswith("is not"):
        with pytest.raises(ClickRecordError) as refused:
            click_from_record(record)
        assert str(refused.value).startswith(f"click #1: Url {url!r} {outcome}")
    else:
        assert click_from_record(record).url == outcome


@pytest.mark.parametrize(
    ("url", "rhost"),
    [
        # A browser's serialisation (every click the proxy records): the URL model's host.
        ("https://www.example.com/a", "moc.elpmaxe.www"),
        ("http://example.com./", "moc.elpmaxe"),
        ("https://user:pw@xn--bcher-kva.example:8443/", "elpmaxe.avk-rehcb--nx"),
        ("http://127.0.0.1:8080/", "1.0.0.721"),
        ("https://[::1]/", "1::"),
        ("https://[::ffff:5db8:d822]/", "228d:8bd5:ffff::"),
        # As a gateway sent it: the text read as written, as rows have always been indexed.
        ("https://a.contoso.com", "moc.osotnoc.a"),
        ("HTTP://WWW.Example.COM./x", "moc.elpmaxe.www"),
        ("http://%61.contoso.com/", "moc.osotnoc.16%"),
        ("http://bücher.example/", "elpmaxe.rehcüb"),
        ("http://0x7f.1/", "1.f7x0"),
        ("http://a.contoso.com\\x", "x\\moc.osotnoc.a"),
        ("http://[::1]:8080/x", "1::"),
    ],
)
def test_click_log_host_index_table(url: str, rhost: str) -> None:
    """The click log indexes a URL by its host reversed: the model's for a serialisation, as written otherwise."""
    assert url_rhost(url) == rhost


def _serialisations() -> list[str]:
    texts = []
    for row in json.loads((WPT / "urltestdata.json").read_text(encoding="utf-8")):
        if isinstance(row, dict):
            texts += [row["input"], row.get("href") or ""]
    for row in json.loads((WPT / "toascii.json").read_text(encoding="utf-8")):
        if isinstance(row, dict):
            texts += [f"http://{row['input']}/", f"https://u:p@{row['input']}:8080/p?q#f"]
    hrefs = set()
    for text in texts:
        try:
            hrefs.add(parse(text).href)
        except InvalidURL:
            continue
    return sorted(hrefs)


def test_a_serialised_url_keeps_the_index_urllib_gave_it() -> None:
    """For every http(s) URL of the URL Standard's tests, serialised, the model's host indexes as urllib's did."""
    hrefs = _serialisations()
    assert len(hrefs) > 250
    assert [h for h in hrefs if url_rhost(h) != reversed_host(urlsplit(h).hostname or "")] == []
