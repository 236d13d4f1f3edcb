"""Reading Teams HTML for links: the visible text, and each ``<a href>`` as one marked value.

A small tokenizer after the HTML Standard's tokenization states that matter here (data, tag open,
attribute name and value, comments and bogus comments): every step consumes input or ends, so the
time is linear in the length of the markup whatever it holds. (Regular expressions over tags, and
the standard library's ``html.parser``, take quadratic time or worse on inputs such as
``<a `` or ``&lt;a href=`` repeated.) An unterminated tag, attribute value or comment runs to the
end of the markup, as in a browser, and is dropped there.

What comes out: the text outside tags with character references decoded, ``<at>`` mentions left
out, each ``<a href>`` replaced by ``MARK + href + MARK`` and the text inside that ``<a>`` left out
(it is what the user sees of that same link), every other tag a space.
"""

from __future__ import annotations

import html
import re

MARK = "\x01"

_WHITESPACE = "\t\n\f\r "
_TAG_NAME = re.compile(r"[A-Za-z][^\t\n\f\r />]*+")
# One attribute (after the spaces and "/" before it): its name, then "=" and a value in double
# quotes, single quotes or none. A quoted value that never closes leaves the unquoted value empty
# in front of the quote, which the reader takes as the end of the markup.
_ATTRIBUTE = re.compile(
    r"""[\t\n\f\r /]*+(?:([^\t\n\f\r />][^\t\n\f\r />=]*+)[\t\n\f\r ]*+"""
    r"""(?:=[\t\n\f\r ]*+(?:"([^"]*+)"|'([^']*+)'|([^\t\n\f\r >"'][^\t\n\f\r >]*+|)))?+)?+"""
)

# A whole tag in one match, for the tags messages are made of (``<p>``, ``</a>``, ``<at id="1">``,
# ``<a href="…" rel="…">``): the same grammar as ``_ATTRIBUTE`` repeated up to the ``>``, with the
# value of an ``href`` that comes first captured. It is tried first; a tag it does not match (an
# unterminated value, a comment, ``<`` as text) is read step by step below. Every repeat is possessive
# and stops at the ``>`` where the step-by-step reading stops, so a failed try costs at most the read after it.
_ONE_ATTRIBUTE = (
    r"""[\t\n\f\r /]*+[^\t\n\f\r />][^\t\n\f\r />=]*+[\t\n\f\r ]*+"""
    r"""(?:=[\t\n\f\r ]*+(?:"[^"]*+"|'[^']*+'|[^\t\n\f\r >"'][^\t\n\f\r >]*+|(?=>))|(?!=))"""
)
_WHOLE_TAG = re.compile(
    r"""<(/?+)([A-Za-z][^\t\n\f\r />]*+)"""
    r"""(?:[\t\n\f\r /]++[hH][rR][eE][fF][\t\n\f\r ]*+=[\t\n\f\r ]*+"""
    r"""(?:"([^"]*+)"|'([^']*+)'|([^\t\n\f\r >"'][^\t\n\f\r >]*+|(?=>))))?+"""
    rf"""(?:{_ONE_ATTRIBUTE})*+[\t\n\f\r /]*+>"""
)


class _Ended(Exception):
    """The markup ended inside a tag or a comment: the rest is not text."""


def visible_text_with_hrefs(markup: str) -> str:
    """The text a Teams reader sees, with each link's href marked in place of its text."""
    out: list[str] = []
    skipping: str | None = None  # "a" or "at": inside an element whose text is not scanned
    skipped: list[str] = []  # the text inside an <a> with no end tag is scanned after all
    pos, end = 0, len(markup)
    try:
        while pos < end:
            lt = markup.find("<", pos)
            if lt == -1:
                lt = end
            if lt > pos:
                _keep(out, skipped, skipping, _text(markup[pos:lt]))
            if lt == end:
                break
            pos, tag, closing, href = _tag(markup, lt)
            if tag is None:
                _keep(out, skipped, skipping, "<")
                continue
            if closing:
                if tag == skipping:
                    skipping, skipped = None, []
                out.append(" ")
            elif tag == "at":
                skipping, skipped = "at", []
            elif tag == "a" and href is not None:
                out.append(f" {MARK}{href}{MARK} ")
                skipping, skipped = "a", []
            else:
                out.append(" ")
    except _Ended:
        pass
    out.extend(skipped)
    return "".join(out)


def _keep(out: list[str], skipped: list[str], skipping: str | None, text: str) -> None:
    if skipping is None:
        out.append(text)
    elif skipping == "a":
        skipped.append(text)


def _text(raw: str) -> str:
    text = html.unescape(raw) if "&" in raw else raw
    # Only this module writes the marker: one decoded from the message must not fake an href.
    return text.replace(MARK, " ") if MARK in text else text


def _tag(markup: str, lt: int) -> tuple[int, str | None, bool, str | None]:
    """(position after it, lowercase tag name or None when ``<`` is text, is an end tag, href)."""
    whole = _WHOLE_TAG.match(markup, lt)
    if whole is not None:
        slash, name, double, single, unquoted = whole.groups()
        tag = name.lower()
        if slash or tag != "a":
            return whole.end(), tag, bool(slash), None
        value = double if double is not None else single if single is not None else unquoted
        if value is not None:
            return whole.end(), tag, False, _text(value).strip(_WHITESPACE)
        # An <a> whose first attribute is not an href: its href (if any) comes later, read below.
    at = lt + 1
    if markup.startswith("!--", at):
        close = markup.find("-->", at + 3)
        if close == -1:
            raise _Ended
        return close + 3, "", False, None
    if markup.startswith(("!", "?"), at) or (markup.startswith("/", at) and not _TAG_NAME.match(markup, at + 1)):
        if markup.startswith("/>", at):
            return at + 2, "", True, None
        close = markup.find(">", at)
        if close == -1:
            raise _Ended
        return close + 1, "", False, None
    closing = markup.startswith("/", at)
    name = _TAG_NAME.match(markup, at + 1 if closing else at)
    if name is None:
        return at, None, False, None
    tag = name.group().lower()
    if closing or tag != "a":
        # Without a quote before the first ">", that ">" ends the tag: most tags are read in one step.
        close = markup.find(">", name.end())
        if close != -1 and markup.find('"', name.end(), close) == -1 and markup.find("'", name.end(), close) == -1:
            return close + 1, tag, closing, None
    pos, href = _attributes(markup, name.end())
    return pos, tag, closing, href if tag == "a" and not closing else None


def _attributes(markup: str, pos: int) -> tuple[int, str | None]:
    """Read attributes up to the tag's ``>``; the first ``href`` value (decoded) if any."""
    href: str | None = None
    end = len(markup)
    while True:
        attribute = _ATTRIBUTE.match(markup, pos)
        assert attribute is not None  # every part of the pattern may be empty
        pos = attribute.end()
        if pos >= end:
            raise _Ended
        name, double, single, unquoted = attribute.groups()
        if name is None:  # only ">" can follow: it cannot start a name, and spaces and "/" were skipped
            return pos + 1, href
        if unquoted == "" and markup[pos] in "\"'":
            raise _Ended  # a quote that never closes: the tag runs to the end
        value = double if double is not None else single if single is not None else unquoted
        if href is None and value is not None and name.lower() == "href":
            href = _text(value).strip(_WHITESPACE)
