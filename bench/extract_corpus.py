"""A deterministic corpus of Teams messages with known links, and our extractor against urlextract.

``generate_corpus(n, seed)`` builds plain-text and Teams-HTML messages (``<a href>`` with
``rel``/``title``/``target``, ``<at>`` mentions, ``&amp;``/``&nbsp;``, ``<br>``, emoji) holding
0-5 links each: http(s) URLs with paths, queries, fragments, ports and Wikipedia-style
parentheses, ``www.`` links, bare domains on real public suffixes, IDN hosts in Unicode and
punycode, IPv4 hosts; decorated with trailing punctuation, brackets, ``<...>`` and quotes; and
mixed with traps that are not links (``setup.py``, ``README.md``, ``v1.2.3``, e-mail addresses,
``e.g.``, ``3.14``). Each message carries the links a reader would click, as ground truth.

``measure(messages)`` times each extractor on the same messages and scores it against the
truth. Run ``python bench/extract_corpus.py [N] [SEED]`` for the table.
"""

from __future__ import annotations

import html
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from shared.urls import extract_urls

_WORD_TEXT = (
    "please review the draft before our sync tomorrow thanks team here is update on release "
    "notes I think we should ship it after lunch can you check this link when you have a minute "
    "meeting moved to three budget numbers look fine ok great let me know if anything breaks"
)
WORDS = tuple(_WORD_TEXT.split(" "))
NAMES = ("Megan Bowen", "Alex Wilber", "Adele Vance", "Lee Gu", "Nestor Wilke", "Joni Sherman")
ASCII_DOMAINS = (
    "contoso.com", "fabrikam.net", "example.org", "northwind.co.uk", "tailspin.io",
    "adventure-works.de", "wingtip.com.au", "litware.fr", "proseware.nl", "woodgrove.ca",
)  # fmt: skip
IDN_DOMAINS = ("bücher.de", "пример.рф", "例え.jp", "straße.de", "café.fr", "mañana.es")
SUBDOMAINS = ("", "", "", "docs.", "app.", "login.", "files.eu.", "m.")
PATH_PARTS = ("sites", "eng", "wiki", "Shared%20Documents", "plan.docx", "v2", "items", "42")
TRAPS = (
    "setup.py", "README.md", "node.js", "config.yaml", "v1.2.3", "e.g.", "3.14",
    "user@example.org", "i.e.", "main.rs", "build.sh",
)  # fmt: skip
EMOJI = ("😀", "👍", "🎉", "🚀")


@dataclass(frozen=True)
class Message:
    """One generated message and the links it holds."""

    text: str
    html: bool
    urls: tuple[str, ...]


@dataclass(frozen=True)
class Score:
    """Speed and accuracy of one extractor on one corpus."""

    name: str
    messages: int
    seconds: float
    precision: float
    recall: float

    @property
    def per_second(self) -> float:
        """Messages handled per second."""
        return self.messages / self.seconds


def _host(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.12:
        return rng.choice(IDN_DOMAINS)
    if kind < 0.18:
        return rng.choice(IDN_DOMAINS).encode("idna").decode("ascii")
    if kind < 0.22:
        return ".".join(str(rng.randint(1, 254)) for _ in range(4))
    return rng.choice(SUBDOMAINS) + rng.choice(ASCII_DOMAINS)


def _path(rng: random.Random) -> str:
    shape = rng.random()
    if shape < 0.2:
        return ""
    path = "/" + "/".join(rng.sample(PATH_PARTS, rng.randint(1, 3)))
    if shape < 0.3:
        return path + f"_({rng.choice(WORDS)})"
    if shape < 0.55:
        return path + f"?id={rng.randint(1, 9999)}&web=1"
    if shape < 0.65:
        return path + f"#{rng.choice(WORDS)}"
    return path


def _link(rng: random.Random) -> tuple[str, str]:
    """(text as typed, URL a click opens)."""
    shape = rng.random()
    if shape < 0.6:
        port = f":{rng.choice((8080, 8443))}" if rng.random() < 0.05 else ""
        url = f"{rng.choice(('https', 'https', 'http'))}://{_host(rng)}{port}{_path(rng)}"
        return url, url
    if shape < 0.8:
        host = rng.choice(ASCII_DOMAINS + IDN_DOMAINS)
        typed = f"www.{host}{_path(rng)}"
        return typed, "http://" + typed
    host = rng.choice(ASCII_DOMAINS + IDN_DOMAINS)
    typed = host + (rng.choice(("", "/" + rng.choice(PATH_PARTS))))
    return typed, "http://" + typed


def _decorate(rng: random.Random, typed: str) -> str:
    shape = rng.random()
    if shape < 0.25:
        return typed + rng.choice(".,!?;:")
    if shape < 0.35:
        return f"({typed})"
    if shape < 0.40:
        return f"<{typed}>"
    if shape < 0.45:
        return f'"{typed}"'
    return typed


def _filler(rng: random.Random, count: int) -> list[str]:
    words = [rng.choice(WORDS) for _ in range(count)]
    if rng.random() < 0.5:
        words.insert(rng.randrange(len(words) + 1), rng.choice(TRAPS))
    return words


def _plain(rng: random.Random, links: int) -> Message:
    pieces = _filler(rng, rng.randint(6, 14))
    truth: list[str] = []
    for _ in range(links):
        typed, url = _link(rng)
        pieces.insert(rng.randrange(len(pieces) + 1), _decorate(rng, typed))
        truth.append(url)
    pieces = [p for p in pieces]
    text = " ".join(pieces)
    ordered = sorted(set(truth), key=lambda u: _position(text, u))
    return Message(text, False, tuple(ordered))


def _position(text: str, url: str) -> int:
    bare = url.removeprefix("http://") if not text.count(url) else url
    found = text.find(bare)
    return found if found >= 0 else len(text)


def _teams_html(rng: random.Random, links: int) -> Message:
    parts: list[str] = [html.escape(w) for w in _filler(rng, rng.randint(5, 10))]
    if rng.random() < 0.6:
        parts.insert(0, f'<at id="{rng.randint(0, 3)}">{rng.choice(NAMES)}</at>')
    truth: list[str] = []
    for _ in range(links):
        typed, url = _link(rng)
        spot = rng.randrange(len(parts) + 1)
        if rng.random() < 0.8:
            href = url if "://" in typed else "https://" + typed
            escaped = html.escape(href)
            shown = html.escape(typed) if rng.random() < 0.7 else rng.choice(WORDS)
            parts.insert(
                spot,
                f'<a href="{escaped}" rel="noreferrer noopener" title="{escaped}" '
                f'target="_blank">{shown}</a>',
            )
            truth.append(href)
        else:
            parts.insert(spot, html.escape(typed))
            truth.append(url)
    if rng.random() < 0.5:
        parts.append(rng.choice(EMOJI))
    glue = [" "] * (len(parts) - 1)
    for spot in rng.sample(range(len(glue)), min(len(glue), 2)):
        glue[spot] = rng.choice(("&nbsp;", "<br>", " "))
    body = parts[0] + "".join(g + p for g, p in zip(glue, parts[1:], strict=True))
    text = f"<div><p>{body}</p></div>"
    return Message(text, True, tuple(dict.fromkeys(truth)))


def generate_corpus(n: int = 20_000, seed: int = 1234) -> list[Message]:
    """``n`` messages, 60 % plain text and 40 % Teams HTML, the same for the same seed."""
    rng = random.Random(seed)
    counts = (0, 1, 1, 2, 2, 3, 4, 5)
    return [
        (_teams_html if rng.random() < 0.4 else _plain)(rng, rng.choice(counts)) for _ in range(n)
    ]


Extractor = Callable[[Message], list[str]]

_HREF = re.compile(r"""<a\b[^>]*?\shref\s*=\s*"([^"]*)"[^>]*>(?:.*?</a>)?""", re.I | re.S)
_TAG = re.compile(r"<at\b[^>]*>.*?</at>|<[^>]*>", re.I | re.S)


def ours(message: Message) -> list[str]:
    """Our extractor."""
    return extract_urls(message.text, html=message.html)


def urlextract_extractors() -> dict[str, Extractor]:
    """urlextract on the raw message, and urlextract told about HTML (hrefs + visible text)."""
    from urlextract import URLExtract

    finder = URLExtract()

    def scheme(found: Sequence[str]) -> list[str]:
        return [u if "://" in u else "http://" + u for u in found]

    def raw(message: Message) -> list[str]:
        return scheme(finder.find_urls(message.text, only_unique=True))

    def html_aware(message: Message) -> list[str]:
        if not message.html:
            return raw(message)
        hrefs = [html.unescape(h) for h in _HREF.findall(message.text)]
        visible = html.unescape(_TAG.sub(" ", _HREF.sub(" ", message.text)))
        return hrefs + scheme(finder.find_urls(visible, only_unique=True))

    return {"urlextract (raw message)": raw, "urlextract (hrefs + text)": html_aware}


def measure(messages: Sequence[Message], extractor: Extractor, name: str, repeat: int = 3) -> Score:
    """Best-of-``repeat`` time of ``extractor`` over ``messages``, with precision and recall."""
    best = float("inf")
    results: list[list[str]] = []
    for _ in range(repeat):
        started = time.perf_counter()
        results = [extractor(m) for m in messages]
        best = min(best, time.perf_counter() - started)
    hits = found = wanted = 0
    for message, result in zip(messages, results, strict=True):
        got, truth = set(result), set(message.urls)
        hits += len(got & truth)
        found += len(got)
        wanted += len(truth)
    return Score(name, len(messages), best, hits / max(found, 1), hits / max(wanted, 1))


def compare(n: int = 20_000, seed: int = 1234, baseline_messages: int = 2_000) -> list[Score]:
    """Our extractor on ``n`` messages; urlextract on the first ``baseline_messages`` of them."""
    corpus = generate_corpus(n, seed)
    scores = [measure(corpus, ours, "shared.urls.extract_urls", repeat=5)]
    sample = corpus[:baseline_messages]
    scores.extend(
        measure(sample, fn, name, repeat=1) for name, fn in urlextract_extractors().items()
    )
    return scores


def main(argv: Sequence[str]) -> int:
    """Print the comparison table."""
    n = int(argv[0]) if argv else 20_000
    seed = int(argv[1]) if len(argv) > 1 else 1234
    corpus = generate_corpus(n, seed)
    links = sum(len(m.urls) for m in corpus)
    chars = sum(len(m.text) for m in corpus) / len(corpus)
    html_share = sum(m.html for m in corpus) / len(corpus)
    print(
        f"corpus: {n} messages (seed {seed}), {chars:.0f} chars avg, "
        f"{html_share:.0%} HTML, {links} links"
    )
    scores = compare(n, seed)
    ours_rate = scores[0].per_second
    print(
        f"{'extractor':<28} {'msgs':>6} {'msgs/s':>10} {'us/msg':>8} "
        f"{'precision':>9} {'recall':>7} {'ours x':>7}"
    )
    for s in scores:
        print(
            f"{s.name:<28} {s.messages:>6} {s.per_second:>10,.0f} {1e6 / s.per_second:>8.1f} "
            f"{s.precision:>9.4f} {s.recall:>7.4f} {ours_rate / s.per_second:>7.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
