"""Finding the web links in a Teams message, plain text or Teams HTML.

One precompiled pattern scans the text once. Its alternatives, tried in order at each place:

* an ``<a href>`` marker left by the HTML pass (``\\x01href\\x01``), taken verbatim when it is
  http(s);
* ``http://`` / ``https://`` URLs;
* an e-mail address, consumed so that its domain is never taken for a link;
* ``www.`` links without a scheme;
* bare domains (``example.co.uk/path``), taken only when the last label is a public suffix of
  the bundled Public Suffix List, its letters are all of one case (so ``done.It`` is a sentence,
  not Italy), and, for the suffixes that are also common file extensions, only with a path
  (``setup.py`` and ``README.md`` are files; ``example.in/jobs`` is a site).

Scheme-less links come back with ``http://`` in front, as browsers and Teams open them.
Every candidate is then read with the one URL parser (``shared.urls.weburl``) and kept only when a
browser opens it at a host that can exist: ``google.com:500000`` (no such port) is no link, nor is
a link whose host has an empty label or a label starting or ending with ``-``, or a top-level
label with ``_``. What is kept is exactly the text of the message, which the proxy reads the same way.
Trailing ``. , ! ? ; : ' *`` and closing brackets without an opening partner are trimmed, so
``(see https://en.wikipedia.org/wiki/Foo_(bar)).`` gives ``…/Foo_(bar)``.

In HTML, each ``<a href>`` element counts once, through its href: the text inside it is what
the user sees of that same link. ``<at>`` mentions are dropped, other tags become spaces, and
entities are unescaped before the visible text is scanned (``shared.urls.markup``).

Every step is linear in the length of the text: the patterns never give back what they consumed
and start only where a word starts, and the markup is read by a tokenizer, not a pattern.
"""

from __future__ import annotations

import re

from shared.urls.domains import public_suffix_labels
from shared.urls.errors import URLError
from shared.urls.markup import MARK as _MARK
from shared.urls.markup import visible_text_with_hrefs
from shared.urls.weburl import MAX_URL_LENGTH, WebURL, parse

# Public suffixes that are far more often a file name's extension in chat ("setup.py"). A bare
# name ending in one of them is taken only with a path after it.
FILE_EXTENSION_SUFFIXES = frozenset(
    {
        "ac", "ai", "am", "app", "bz", "cc", "cs", "gs", "in", "md", "mk", "ml", "mov", "ms",
        "pl", "pm", "ps", "py", "rs", "sc", "sh", "so", "st", "tf", "ts", "zip",
    }
)  # fmt: skip

_BODY = '[^\\s<>"`\\x00-\\x1f\\x7f\u201c\u201d\u2018\u2019\u00ab\u00bb\u300c\u300d\u300e\u300f\u3010\u3011\uff08\uff09\u3002\u3001\uff0c]'  # noqa: E501
# Possessive repeats (Python 3.11+) keep the scan linear: a label never gives characters back.
_LABEL = r"[^\W_][\w\-]*+"
_TLD = r"(?:[^\W\d_]{2,63}|[xX][nN]--[a-zA-Z0-9\-]{1,59})"

# One look-behind shared by every alternative makes a position inside a word fail at once.
_LINK = re.compile(
    rf"""(?<![\w.+\-])(?:
      {_MARK}(?P<href>[^{_MARK}]*+){_MARK}
    | (?P<web>[hH][tT][tT][pP][sS]?+://{_BODY}++)
    | [\w.+\-]++@{_LABEL}(?:\.{_LABEL})++
    | (?<![@%/:\\])(?:
        (?P<www>[wW][wW][wW]\.{_BODY}++)
      | (?P<bare>(?:{_LABEL}\.(?=[^\W_]))++(?P<tld>{_TLD})(?![\w@\-]|\.[\w\-])
          (?::\d++(?![\w@\-]))?+(?!:\w)(?:[/?\#]{_BODY}*+)?)))
    """,
    re.VERBOSE,
)
_WEB_SCHEME = re.compile(r"\s*https?://[^/?#\s]", re.IGNORECASE)
_SCHEME_HTTP = re.compile(r"https?:", re.IGNORECASE)
_WWW_HOST = re.compile(rf"[wW][wW][wW](?:\.{_LABEL})+\.{_TLD}(?=$|[:/?#])")
# A host a browser reaches by name: labels of letters, digits, "-" and "_" (DNS and browsers take
# "_" below the top level), none empty, none starting or ending with "-"; the top label without "_";
# a root dot allowed. Labels hold no ".", so giving back a label is all the pattern can backtrack.
_REACHABLE_NAME = re.compile(r"(?:(?!-)[a-z0-9_\-]{1,63}(?<!-)\.)*(?!-)[a-z0-9\-]{1,63}(?<!-)\.?")
_MAX_HOST_LENGTH = 254

_TABS_AND_NEWLINES = str.maketrans("", "", "\t\n\r")
_TRAILING_PUNCTUATION = frozenset(".,!?;:'*")
_OPENER_OF = {")": "(", "]": "[", "}": "{"}
_TRIMMABLE = _TRAILING_PUNCTUATION | frozenset(_OPENER_OF)


def extract_urls(text: str, *, html: bool = False) -> list[str]:
    """The http(s) links in ``text``, in order of appearance, each once."""
    if _MARK in text:
        text = text.replace(_MARK, " ")
    # Every link, and every e-mail address, holds a "." or a ":"; the other words are dropped
    # before the scan. An href can hold spaces: the marked hrefs (the odd pieces between markers,
    # which only the markup reader writes, in pairs) are kept whole.
    if html:
        pieces = visible_text_with_hrefs(text).split(_MARK)
        words = []
        for index, piece in enumerate(pieces):
            if index % 2:
                words.append(f"{_MARK}{piece}{_MARK}")
            else:
                words.extend(word for word in piece.split() if "." in word or ":" in word)
    else:
        words = [word for word in text.split() if "." in word or ":" in word]
    if not words:
        return []
    text = " ".join(words)
    found: dict[str, None] = {}
    refused: set[str] = set()
    suffixes = public_suffix_labels()
    for match in _LINK.finditer(text):
        kind = match.lastgroup
        if kind == "href":
            url = href_target(match.group("href"))
            if url is None:
                continue
        elif kind == "web":
            url = _trim(match.group("web"))
            if not _WEB_SCHEME.match(url):
                continue
        elif kind == "www":
            url = _trim(match.group("www"))
            if not _WWW_HOST.match(url):
                continue
            url = "http://" + url
        elif kind == "bare":
            url = _trim(match.group("bare"))
            if not _is_bare_link(url, match.group("tld"), suffixes):
                continue
            url = "http://" + url
        else:
            continue
        # Each distinct candidate is parsed once, however often a message repeats it.
        if url not in found and url not in refused:
            if _opens(url):
                found[url] = None
            else:
                refused.add(url)
    return list(found)


def href_target(href: str) -> str | None:
    """The link an ``<a href>`` (or a card's URL) opens in Teams, as text, when it is http(s); None otherwise.

    Any spelling a browser takes counts (``http:host``, ``https:\\\\host``), and a scheme-relative
    ``//host`` opens over https, as Teams is served over https. A browser drops tabs and newlines
    from an href before parsing it, and so does the link we wrap.
    """
    url = href.translate(_TABS_AND_NEWLINES) if "\t" in href or "\n" in href or "\r" in href else href
    url = url.strip()
    if url.startswith(("//", "\\\\", "/\\", "\\/")):
        url = "https:" + url
    return url if _SCHEME_HTTP.match(url) else None


def _opens(candidate: str) -> bool:
    """Whether a browser opens ``candidate`` at a host that can exist."""
    if len(candidate) > MAX_URL_LENGTH:
        return False
    try:
        value = parse(candidate)
    except URLError:
        return False
    return reachable_host(value)


def reachable_host(value: WebURL) -> bool:
    """Whether the URL's host is an address, or a name the DNS can hold (see ``_REACHABLE_LABEL``)."""
    if value.is_ip:
        return True
    host = value.host
    return len(host) <= _MAX_HOST_LENGTH and _REACHABLE_NAME.fullmatch(host) is not None


def _trim(candidate: str) -> str:
    if candidate[-1:] not in _TRIMMABLE:  # most links end in a letter, a digit or "/"
        return candidate
    end = len(candidate)
    # Bracket counts are taken once and updated as characters are trimmed: a candidate ending in a
    # long run of ")" is trimmed in linear time.
    unmatched: dict[str, int] = {}
    while end:
        last = candidate[end - 1]
        if last in _TRAILING_PUNCTUATION:
            end -= 1
            continue
        opener = _OPENER_OF.get(last)
        if opener is not None:
            if last not in unmatched:
                unmatched[last] = candidate.count(last, 0, end) - candidate.count(opener, 0, end)
            if unmatched[last] > 0:
                unmatched[last] -= 1
                end -= 1
                continue
        break
    return candidate[:end]


def _is_bare_link(url: str, tld: str, suffixes: frozenset[str]) -> bool:
    if not (tld.islower() or tld.isupper()):
        return False
    suffix = tld.lower()
    if suffix not in suffixes:
        return False
    has_path = len(url) > url.find(tld) + len(tld) + 1
    return has_path or suffix not in FILE_EXTENSION_SUFFIXES
