"""The "Why" line of the warning page, said to the person who clicked.

Verdict reasons are written for analysts ("admin verdict on host/: set by cli", "listed by feed
urlhaus as malware: host/"): the expression, the feed and who set it stay in the click record and
the alert. The person who clicked is told, in plain words, who judged the site and what it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from shared.verdicts import Verdict, VerdictResult

# Threat names as sources spell them (Defender's "Phish", feed and Safe Browsing names), in words;
# keyed by the name in lower case without spaces, dashes or underscores.
_THREAT_WORDS = {
    "phish": "phishing",
    "phishing": "phishing",
    "socialengineering": "phishing",
    "malware": "malware",
    "malwaredownload": "malware",
    "spam": "spam",
    "unwantedsoftware": "unwanted software",
    "potentiallyharmfulapplication": "a harmful application",
}
_SEPARATORS = str.maketrans("", "", " _-")


def _threat(threat_types: Iterable[str]) -> str | None:
    for raw in threat_types:
        word = _THREAT_WORDS.get(raw.lower().translate(_SEPARATORS))
        if word:
            return word
    return None


def _label(verdict: Verdict, threat: str | None) -> str:
    if threat is not None:
        return threat
    return "dangerous" if verdict is Verdict.MALICIOUS else "suspicious"


# What the heuristics noticed, by the start of their (analyst-facing) reason, in plain words.
_SIGNS = (
    ("look-alike of protected domain ", "its name imitates {}"),
    ("userinfo in URL", "it shows one name but goes to another site"),
    ("host is an IP address", "it is a bare IP address"),
    ("internationalised host", "its name uses look-alike characters"),
    ("mixed-script host label", "its name uses look-alike characters"),
    ("undecodable punycode host", "its name uses look-alike characters"),
    ("brand name ", "it uses a brand's name outside that brand's own sites"),
)


def _signs(reasons: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    for reason in reasons:
        for start, words in _SIGNS:
            if reason.startswith(start):
                # The imitated domain is one of the organisation's configured protected domains.
                sign = words.format(reason[len(start):].split(" ", 1)[0]) if "{}" in words else words
                if sign not in found:
                    found.append(sign)
    return found[:2]


@lru_cache(maxsize=256)
def _sentence(source: str, verdict: Verdict, threat_types: tuple[str, ...], reasons: tuple[str, ...]) -> str:
    threat = _threat(threat_types)
    what = _label(verdict, threat)
    if source == "admin":
        return f"Your security team marked this site as {what}."
    if source == "feeds" or source.startswith("feed:"):
        return f"A threat feed lists this site as {what}."
    if source == "safebrowsing":
        return f"Google Safe Browsing lists this site as {what}."
    if source == "scan":
        return f"A scan of this site found it {what if threat is None else 'to be ' + what}."
    if source == "heuristics":
        signs = _signs(reasons)
        return "The address has signs of phishing" + (f": {' and '.join(signs)}." if signs else ".")
    return f"This site is known as {what}."


def why(verdict: VerdictResult | None) -> str | None:
    """One sentence for the person who clicked; None when there is nothing to explain."""
    if verdict is None or not (verdict.verdict.risky or verdict.verdict is Verdict.PENDING):
        return None
    if verdict.verdict is Verdict.PENDING:
        return "This site has not been checked yet."
    reasons = tuple(verdict.reasons) if verdict.source == "heuristics" else ()
    return _sentence(verdict.source, verdict.verdict, tuple(verdict.threat_types), reasons)
