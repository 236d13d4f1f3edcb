"""Parsers for the threat feeds the verdict engine reads.

Each parser turns a downloaded body into `FeedEntry` values (the raw URL or domain, as the
feed wrote it) and counts the lines it could not use. A bad line is reported, never fatal;
a body that is not a feed at all (cut in the middle, an HTML error page, empty, mostly bad)
raises `FeedFormatError`, so a broken download never replaces the last good copy.

A host must be an IP address or end in a public suffix (the Public Suffix List bundled with
tldextract): ``readme.txt``, ``backup.zip`` or ``printer.lan`` in a feed are bad lines, not entries
that match nothing or, worse, a name on someone's intranet. The names RFC 2606 reserves for tests
and documentation (``.test``, ``.example``, ``.invalid``) count as suffixes, as they can never be
anyone's real host.
"""

from __future__ import annotations

import bz2
import csv
import io
import json
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from shared.feeds.errors import FeedFormatError
from shared.urls.domains import is_ip, public_suffix_labels

MAX_BAD_EXAMPLES = 5
DEFAULT_MAX_BAD_RATIO = 0.5
DEFAULT_MAX_UNPACKED_BYTES = 1 << 30

# A URL with a scheme and a host, no whitespace or control characters anywhere.
# Undecodable bytes arrive as lone surrogates (surrogateescape) and make a line bad.
_URL_RE = re.compile(
    r"^[A-Za-z][A-Za-z0-9+.\-]*://[^\x00-\x20\x7f\ud800-\udfff/?#]+"
    r"(?:[/?#][^\x00-\x20\x7f\ud800-\udfff]*)?$"
)
# A bare host (name, IPv4 or [IPv6]) with an optional port and path, as plain lists write them.
_BARE_RE = re.compile(
    r"^(?:\[[0-9A-Fa-f:.]+\]|(?:[\w-]+\.)+[\w-]+\.?)(?::\d{1,5})?"
    r"(?:/[^\x00-\x20\x7f\ud800-\udfff]*)?$"
)
# The host of a line that matched one of the two forms above: after any scheme and userinfo, up to
# the port, path, query or fragment.
_HOST_OF = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.\-]*://)?(?:[^/?#@]*@)?(\[[^\]]*\]|[^/?#:]*)")
# A last label the WHATWG host parser reads as an IPv4 number (decimal, hex or octal forms).
_NUMERIC_LABEL = re.compile(r"(?:0[xX][0-9A-Fa-f]*|[0-9]+)")
_RESERVED_SUFFIXES = frozenset({"test", "example", "invalid"})  # RFC 2606
_HTML_MARKERS = ("<!doctype html", "<html", "<head", "<body", "<?xml", "<title")
_URLHAUS_COLUMNS = (
    "id", "dateadded", "url", "url_status", "last_online", "threat", "tags", "urlhaus_link",
    "reporter",
)
_URLHAUS_THREATS = {"malware_download": "malware"}


class FeedFormat(StrEnum):
    """The layouts `parse_feed` understands."""

    URLHAUS_CSV = "urlhaus-csv"
    URLHAUS_TEXT = "urlhaus-text"
    OPENPHISH = "openphish"
    PHISHTANK_JSON = "phishtank-json"
    PHISHTANK_CSV = "phishtank-csv"
    PLAIN = "plain"
    CSV_COLUMN = "csv"


_DEFAULT_THREATS = {
    FeedFormat.URLHAUS_CSV: "malware",
    FeedFormat.URLHAUS_TEXT: "malware",
    FeedFormat.OPENPHISH: "phishing",
    FeedFormat.PHISHTANK_JSON: "phishing",
    FeedFormat.PHISHTANK_CSV: "phishing",
    FeedFormat.PLAIN: "malicious",
    FeedFormat.CSV_COLUMN: "malicious",
}


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One listed URL or domain, as the feed wrote it, with what the feed says it is."""

    value: str
    threat: str
    first_seen: datetime | None = None
    reference: str | None = None


@dataclass(frozen=True)
class ParseResult:
    """The usable entries of a feed and an account of the lines that were not usable.

    `skipped` counts well-formed records the feed itself marks as not (or no longer) a threat,
    such as unverified or offline PhishTank submissions; they are not bad lines.
    """

    entries: list[FeedEntry]
    bad_lines: int
    bad_examples: list[str]
    skipped: int = 0


class _Tally:
    """Collects entries and bad lines while one body is parsed."""

    __slots__ = ("bad", "entries", "examples", "skipped")

    def __init__(self) -> None:
        self.entries: list[FeedEntry] = []
        self.bad = 0
        self.skipped = 0
        self.examples: list[str] = []

    def reject(self, where: str, line: str, why: str) -> None:
        self.bad += 1
        if len(self.examples) < MAX_BAD_EXAMPLES:
            self.examples.append(f"{where}: {why}: {line[:160]!r}")


def parse_feed(
    data: bytes,
    fmt: FeedFormat,
    *,
    column: str | None = None,
    default_threat: str | None = None,
    max_bad_ratio: float = DEFAULT_MAX_BAD_RATIO,
    max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES,
) -> ParseResult:
    """Parse a feed body (plain, gzip, bzip2 or a one-file zip) in the layout `fmt`.

    Raises `FeedFormatError` when the body as a whole is unusable; otherwise bad lines are
    counted in the result. `column` names the URL column of `FeedFormat.CSV_COLUMN`.
    """
    fmt = FeedFormat(fmt)
    threat = default_threat or _DEFAULT_THREATS[fmt]
    text = unpack(data, max_unpacked_bytes).decode("utf-8", errors="surrogateescape")
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise FeedFormatError("empty feed body")
    head = text[:1024].lstrip().lower()
    if any(head.startswith(m) for m in _HTML_MARKERS) or "<html" in head:
        raise FeedFormatError("body is an HTML page, not a feed")
    tally = _Tally()
    if fmt is FeedFormat.PHISHTANK_JSON:
        _parse_phishtank_json(text, tally)
    elif fmt is FeedFormat.URLHAUS_CSV:
        _parse_urlhaus_csv(text, tally)
    elif fmt is FeedFormat.PHISHTANK_CSV:
        _parse_header_csv(text, tally, "url", threat, phishtank=True)
    elif fmt is FeedFormat.CSV_COLUMN:
        if not column:
            raise FeedFormatError("the csv format needs column= naming the URL column")
        _parse_header_csv(text, tally, column, threat, phishtank=False)
    else:
        _parse_lines(text, tally, threat, allow_bare=fmt is FeedFormat.PLAIN)
    return _judge(tally, max_bad_ratio)


def _judge(tally: _Tally, max_bad_ratio: float) -> ParseResult:
    usable = len(tally.entries)
    if usable == 0:
        detail = f" ({tally.bad} bad lines, e.g. {tally.examples[0]})" if tally.examples else ""
        raise FeedFormatError(f"feed has no usable entries{detail}")
    if tally.bad / (usable + tally.bad) > max_bad_ratio:
        raise FeedFormatError(
            f"{tally.bad} of {usable + tally.bad} records are bad (more than "
            f"{max_bad_ratio:.0%}); first: {'; '.join(tally.examples)}"
        )
    return ParseResult(tally.entries, tally.bad, tally.examples, tally.skipped)


def unpack(data: bytes, max_bytes: int = DEFAULT_MAX_UNPACKED_BYTES) -> bytes:
    """Return `data` decompressed when it is gzip, bzip2 or a zip holding one file.

    Decompression stops at `max_bytes`, so a small bomb cannot exhaust memory; a cut
    archive raises `FeedFormatError` like any other truncated download.
    """
    try:
        if data[:2] == b"\x1f\x8b":
            return _drain(zlib.decompressobj(wbits=31), data, max_bytes, "gzip")
        if data[:3] == b"BZh":
            return _drain(bz2.BZ2Decompressor(), data, max_bytes, "bzip2")
        if data[:4] == b"PK\x03\x04":
            return _unzip(data, max_bytes)
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        raise FeedFormatError(f"corrupt compressed feed: {exc}") from exc
    return data


def _drain(dec: Any, data: bytes, max_bytes: int, kind: str) -> bytes:
    out = dec.decompress(data, max_bytes + 1)
    if len(out) > max_bytes:
        raise FeedFormatError(f"{kind} feed unpacks to more than {max_bytes} bytes")
    if not dec.eof:
        raise FeedFormatError(f"{kind} feed is truncated")
    return bytes(out)


def _unzip(data: bytes, max_bytes: int) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [i for i in archive.infolist() if not i.is_dir()]
        if len(members) != 1:
            raise FeedFormatError(f"zip feed must hold exactly one file, holds {len(members)}")
        member = members[0]
        if member.file_size > max_bytes:
            raise FeedFormatError(f"zip feed unpacks to more than {max_bytes} bytes")
        with archive.open(member) as fh:
            out = fh.read(max_bytes + 1)
    if len(out) > max_bytes:
        raise FeedFormatError(f"zip feed unpacks to more than {max_bytes} bytes")
    return out


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """Numbered lines without their line ending (`splitlines` would also split on U+2028)."""
    for number, line in enumerate(text.split("\n"), start=1):
        yield number, line.removesuffix("\r")


def _is_last_and_cut(text: str, number: int, total: int) -> bool:
    return number == total and not text.endswith("\n")


def _suffix_problem(value: str) -> str | None:
    """Why the host of `value` cannot be a real host on the internet, or None when it can."""
    match = _HOST_OF.match(value)
    host = (match.group(1) if match else "").rstrip(".").lower()
    last = host.rsplit(".", 1)[-1]
    if is_ip(host) or _NUMERIC_LABEL.fullmatch(last):
        return None
    if "." in host and (last in _RESERVED_SUFFIXES or last in public_suffix_labels()):
        return None
    return "the host does not end in a public suffix"


def _valid_value(value: str, *, allow_bare: bool) -> str | None:
    """Why `value` is not a usable URL (or domain, when allowed); None when it is."""
    if _URL_RE.match(value) or (allow_bare and _BARE_RE.match(value)):
        return _suffix_problem(value)
    if any("\udc80" <= c <= "\udcff" for c in value):
        return "not UTF-8"
    return "not a URL or domain" if allow_bare else "not a URL"


def _parse_lines(text: str, tally: _Tally, threat: str, *, allow_bare: bool) -> None:
    for number, raw in _lines(text):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        why = _valid_value(line, allow_bare=allow_bare)
        if why:
            tally.reject(f"line {number}", line, why)
        else:
            tally.entries.append(FeedEntry(line, threat))


def _csv_row(line: str) -> list[str]:
    return next(csv.reader((line,), strict=True))


def _parse_urlhaus_csv(text: str, tally: _Tally) -> None:
    columns: tuple[str, ...] = _URLHAUS_COLUMNS
    total = text.count("\n") + 1
    for number, raw in _lines(text):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            # The dump names its columns in a comment; older dumps lack last_online.
            names = line.lstrip("#").strip()
            if names.startswith("id,") and "url" in names.split(","):
                columns = tuple(n.strip() for n in names.split(","))
            continue
        try:
            row = _csv_row(line)
        except csv.Error as exc:
            row = []
            why = f"malformed CSV ({exc})"
        else:
            why = f"expected {len(columns)} fields, got {len(row)}"
        if len(row) != len(columns):
            if _is_last_and_cut(text, number, total):
                raise FeedFormatError(f"feed is truncated: last line {number} is cut") from None
            tally.reject(f"line {number}", line, why)
            continue
        record = dict(zip(columns, row, strict=True))
        url = record["url"].strip()
        bad = _valid_value(url, allow_bare=False)
        if bad:
            tally.reject(f"line {number}", line, bad)
            continue
        kind = record.get("threat", "").strip()
        tally.entries.append(
            FeedEntry(
                url,
                _URLHAUS_THREATS.get(kind, kind or "malware"),
                _parse_time(record.get("dateadded", "")),
                record.get("urlhaus_link") or None,
            )
        )


def _parse_header_csv(
    text: str, tally: _Tally, column: str, threat: str, *, phishtank: bool
) -> None:
    numbered = [(n, line) for n, line in _lines(text) if line.strip() and not line.startswith("#")]
    if not numbered:
        raise FeedFormatError("CSV feed has no header row")
    header = [h.strip().lower() for h in _csv_row(numbered[0][1])]
    if column.lower() not in header:
        raise FeedFormatError(f"CSV feed has no column {column!r} (columns: {', '.join(header)})")
    total = text.count("\n") + 1
    for number, line in numbered[1:]:
        try:
            row = _csv_row(line)
        except csv.Error as exc:
            row, why = [], f"malformed CSV ({exc})"
        else:
            why = f"expected {len(header)} fields, got {len(row)}"
        if len(row) != len(header):
            if _is_last_and_cut(text, number, total):
                raise FeedFormatError(f"feed is truncated: last line {number} is cut")
            tally.reject(f"line {number}", line, why)
            continue
        record = dict(zip(header, row, strict=True))
        value = record[column.lower()].strip()
        bad = _valid_value(value, allow_bare=not phishtank)
        if bad:
            tally.reject(f"line {number}", line, bad)
            continue
        if phishtank:
            _add_phishtank(record, value, tally)
        else:
            tally.entries.append(FeedEntry(value, threat))


def _parse_phishtank_json(text: str, tally: _Tally) -> None:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FeedFormatError(f"truncated or malformed JSON feed: {exc}") from exc
    if not isinstance(items, list):
        raise FeedFormatError(f"PhishTank JSON must be an array, got {type(items).__name__}")
    for number, item in enumerate(items, start=1):
        url = item.get("url") if isinstance(item, dict) else None
        if not isinstance(url, str):
            tally.reject(f"item {number}", repr(item), "no url")
            continue
        url = url.strip()
        bad = _valid_value(url, allow_bare=False)
        if bad:
            tally.reject(f"item {number}", url, bad)
            continue
        _add_phishtank({k: str(v) for k, v in item.items() if v is not None}, url, tally)


def _add_phishtank(record: dict[str, str], url: str, tally: _Tally) -> None:
    # PhishTank lists every submission; only verified, still-online phish are a threat.
    verified = record.get("verified", "yes").strip().lower() in ("yes", "true", "1")
    online = record.get("online", "yes").strip().lower() in ("yes", "true", "1")
    if not (verified and online):
        tally.skipped += 1
        return
    tally.entries.append(
        FeedEntry(
            url,
            "phishing",
            _parse_time(record.get("submission_time", "")),
            record.get("phish_detail_url") or None,
        )
    )


def _parse_time(value: str) -> datetime | None:
    """Feed timestamps are UTC, with or without an offset; an unreadable one is just unknown."""
    value = value.strip()
    if not value:
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
