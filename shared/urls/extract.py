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
Trailing ``. , ! ? ; : ' *`` and closing brackets without an opening partner are trimmed, so
``(see https://en.wikipedia.org/wiki/Foo_(bar)).`` gives ``…/Foo_(bar)``.

In HTML, each ``<a href>`` element counts once, through its href: the text inside it is what
the user sees of that same link. ``<at>`` mentions are dropped, other tags become spaces, and
entities are unescaped before the visible text is scanned.
"""

from __future__ import annotations

import html
import re

from shared.urls.domains import public_suffix_labels

# Public suffixes that are far more often a file name's extension in chat ("setup.py"). A bare
# name ending in one of them is taken only with a path after it.
FILE_EXTENSION_SUFFIXES = frozenset(
    {
        "ac", "ai", "am", "app", "bz", "cc", "cs", "gs", "in", "md", "mk", "ml", "mov", "ms",
        "pl", "pm", "ps", "py", "rs", "sc", "sh", "so", "st", "tf", "ts", "zip",
    }
)  # fmt: skip

_MARK = "\x01"
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
          (?::\d{{1,5}})?(?:[/?\#]{_BODY}*+)?)))
    """,
    re.VERBOSE,
)
_WEB_SCHEME = re.compile(r"\s*https?://[^/?#\s]", re.IGNORECASE)
_WWW_HOST = re.compile(rf"[wW][wW][wW](?:\.{_LABEL})+\.{_TLD}(?=$|[:/?#])")
_ANCHOR = re.compile(
    r"""<a\b[^>]*?\shref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))[^>]*>(?:.*?</a\s*>)?""",
    re.IGNORECASE | re.DOTALL,
)
_TAG_OR_MENTION = re.compile(r"<at\b[^>]*>.*?</at\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)

_TRAILING_PUNCTUATION = frozenset(".,!?;:'*")
_OPENER_OF = {")": "(", "]": "[", "}": "{"}


def extract_urls(text: str, *, html: bool = False) -> list[str]:
    """The http(s) links in ``text``, in order of appearance, each once."""
    if _MARK in text:
        text = text.replace(_MARK, " ")
    if html:
        text = _visible_text_with_hrefs(text)
    else:
        # Every link, and every e-mail address, holds a "." or a ":"; the other words are
        # dropped before the scan (hrefs can hold spaces, so HTML text is scanned whole).
        words = [word for word in text.split() if "." in word or ":" in word]
        if not words:
            return []
        text = " ".join(words)
    found: dict[str, None] = {}
    suffixes = public_suffix_labels()
    for match in _LINK.finditer(text):
        kind = match.lastgroup
        if kind == "href":
            href = match.group("href").strip()
            if _WEB_SCHEME.match(href):
                found[href] = None
        elif kind == "web":
            url = _trim(match.group("web"))
            if _WEB_SCHEME.match(url):
                found[url] = None
        elif kind == "www":
            url = _trim(match.group("www"))
            if _WWW_HOST.match(url):
                found["http://" + url] = None
        elif kind == "bare":
            url = _trim(match.group("bare"))
            if _is_bare_link(url, match.group("tld"), suffixes):
                found["http://" + url] = None
    return list(found)


def _visible_text_with_hrefs(markup: str) -> str:
    marked = _ANCHOR.sub(f" {_MARK}\\1\\2\\3{_MARK} ", markup)
    text = _TAG_OR_MENTION.sub(" ", marked)
    if "&" in text:
        text = html.unescape(text)
        if _MARK in text.replace(_MARK, "", 2 * marked.count(_MARK) // 2):
            text = _drop_unpaired_marks(text, marked.count(_MARK))
    return text


def _drop_unpaired_marks(text: str, expected: int) -> str:
    # An entity that unescapes to the marker (never in real messages) must not fake an href.
    return text if text.count(_MARK) == expected else text.replace(_MARK, " ")


def _trim(candidate: str) -> str:
    end = len(candidate)
    while end:
        last = candidate[end - 1]
        if last in _TRAILING_PUNCTUATION:
            end -= 1
            continue
        opener = _OPENER_OF.get(last)
        if opener is not None and candidate.count(last, 0, end) > candidate.count(opener, 0, end):
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
