"""Text from outside, made inert for each place it is shown: one function per output format.

A message, a URL, a person's name, a comment or a feed is data, never markup. Whatever of it is
shown goes through the function of the output it lands in, and nowhere else:

- ``card_text``: Adaptive Card ``TextBlock`` text and ``FactSet`` values. Teams renders a markdown
  subset there (``[text](url)`` links, emphasis, lists) and turns web addresses it spots into links,
  so brackets and stars become look-alikes, line breaks become spaces, and every address or host
  name is defanged (``hxxps[:]//evil[.]example/x``): a URL shown in a card is text, and the only links
  in our cards are the ones we put in actions.
- ``plain_line``: one line of plain text (the e-mail's text part): control and direction characters
  become spaces, so a value cannot start a line of its own; addresses are defanged as in cards,
  since mail clients link them too.
- ``html_text``: text inside HTML (the e-mail's HTML part): entities, and addresses defanged.
- ``csv_cell``: a CSV cell that a spreadsheet will not run (OWASP "CSV injection").
- ``terminal_line``: a cell of the command line's tables: one line, no control character (so no
  ANSI escape can recolour the terminal or plant an OSC 8 link); addresses stay whole, to be copied.
- ``log_text`` and ``SafeLogRecords``: one log line per record, with secrets in URLs redacted.
"""

from __future__ import annotations

import html
import logging
import re

from shared.redaction import redact_text

# C0/C1 controls, line and paragraph separators, and the bidirectional overrides that can make text
# read in another order than it is stored.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SCHEMED = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]{0,30})(://|:\\\\)([^\s/?#\\]*)")
_WWW = re.compile(r"(?i)(?<![\w.@-])(www\.[^\s/?#]+)")
# A bare host name (``evil.example``, ``login.contoso-phish.com``): the last label is a letter
# label, as every top-level domain is. Not after ``@`` (an address) or inside a longer word.
_HOST = re.compile(r"(?i)(?<![\w@.\-\[])((?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9\-]{0,61}[a-z0-9])\b")
_DEFANGED_SCHEMES = {"http": "hxxp", "https": "hxxps", "ftp": "fxp", "ftps": "fxps"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_LOOK_ALIKE = str.maketrans({"[": "(", "]": ")", "*": "\u2217", "`": "\u02cb", "~": "\u223c"})


def _one_line(text: str) -> str:
    return " ".join(_CONTROLS.sub(" ", text).split())


def _defang_host(host: str) -> str:
    return host.replace(".", "[.]")


def _defang_scheme(match: re.Match[str]) -> str:
    scheme = match.group(1)
    shown = _DEFANGED_SCHEMES.get(scheme.lower(), scheme)
    return f"{shown}[:]{match.group(2)[1:]}{_defang_host(match.group(3))}"


def defang(text: str) -> str:
    """Addresses and host names in ``text`` made unclickable, still readable (``hxxps[:]//evil[.]example/``)."""
    text = _SCHEMED.sub(_defang_scheme, text)
    text = _WWW.sub(lambda m: _defang_host(m.group(1)), text)
    return _HOST.sub(lambda m: _defang_host(m.group(1)), text)


def card_text(value: object) -> str:
    """``value`` as Adaptive Card text in Teams: one line, no markdown, no address a client would link."""
    return defang(_one_line(str(value)).translate(_LOOK_ALIKE))


def plain_line(value: object) -> str:
    """``value`` as one line of plain text (e-mail text part)."""
    return defang(_one_line(str(value)))


def terminal_line(value: object) -> str:
    """``value`` as one line for a terminal: control characters (escape sequences among them) become spaces."""
    return _one_line(str(value))


def html_text(value: object) -> str:
    """``value`` as text inside an HTML element or quoted attribute."""
    return html.escape(defang(_one_line(str(value))), quote=True)


def csv_cell(value: object) -> object:
    """A CSV cell no spreadsheet evaluates: text starting like a formula gets a leading ``'`` (OWASP)."""
    if not isinstance(value, str):
        return value
    if value.startswith(_FORMULA_START) or value.lstrip(" \u00a0").startswith(_FORMULA_START[:4]):
        return "'" + value
    return value


def log_text(value: object) -> str:
    """``value`` fit for one log line: control characters escaped, secrets in URLs redacted."""
    text = redact_text(str(value))
    return _CONTROLS.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


class SafeLogRecords(logging.Filter):
    """A handler filter: each record's message becomes ``log_text`` of itself (one line, no secrets).

    Installed on the handlers, so every logger's output passes it whatever the logging call did.
    A traceback keeps its lines (they are ours), but the URLs in it are redacted too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg, record.args = log_text(message), None
        if record.exc_info and not record.exc_text:
            # The formatter keeps a traceback already rendered: render it here, redacted.
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        return True


def install_log_safety(logger: logging.Logger | None = None) -> None:
    """Add ``SafeLogRecords`` to every handler of ``logger`` (the root logger by default), once."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, SafeLogRecords) for f in handler.filters):
            handler.addFilter(SafeLogRecords())
