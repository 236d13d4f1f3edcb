"""URL heuristics: signs that make a URL suspicious (never malicious), each named.

A weighted sum of features in the style of phishing_catcher: each feature that fires adds
its weight and a reason a person can read on the warning page or in an alert. The score
decides "suspicious" against a threshold; a verdict of "malicious" only ever comes from a
feed, a scan or an administrator.

Look-alike detection folds a host to a skeleton (Unicode confusables to their ASCII
homoglyph, `0`→`o`, `1`→`l`, `rn`→`m`, `vv`→`w`) and compares it with the skeletons of the
protected domains, so `paypal.com` spelt in Cyrillic letters, punycode `xn--pypal-4ve.com`
and `paypa1.com` all read as `paypal.com`. The confusables table is the Unicode one shipped by the
`confusable-homoglyphs` package.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from urllib.parse import unquote

import idna
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.errors import SafeLinksError
from shared.urls import InvalidURL, WebURL, parse


class HeuristicsError(SafeLinksError):
    """Base of the heuristics errors: a URL that cannot be assessed at all."""


class HeuristicWeights(BaseModel):
    """What each sign adds to the score."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ip_host: float = 0.5
    userinfo: float = 0.6
    lookalike: float = 0.9
    punycode: float = 0.2
    mixed_script: float = 0.4
    brand_in_host: float = 0.4
    subdomains: float = 0.2
    length: float = 0.2
    shortener: float = 0.3
    risky_tld: float = 0.3


def _lowered(values: list[str]) -> list[str]:
    return [v.strip().lower().strip(".") for v in values if v.strip()]


class HeuristicsConfig(BaseModel):
    """Weights, threshold and the lists the heuristics consult."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    weights: HeuristicWeights = Field(default_factory=HeuristicWeights)
    threshold: float = 0.5
    brands: list[str] = Field(
        default_factory=lambda: ["microsoft", "office365", "outlook", "paypal", "docusign"]
    )
    protected_domains: list[str] = Field(
        default_factory=lambda: [
            "microsoft.com", "office.com", "live.com", "microsoftonline.com", "outlook.com",
            "sharepoint.com", "paypal.com", "docusign.net",
        ]
    )
    risky_tlds: list[str] = Field(
        default_factory=lambda: [
            "zip", "mov", "top", "xyz", "click", "country", "gq", "tk", "ml", "cf", "ga",
            "work", "rest", "cam", "quest", "sbs",
        ]
    )
    shortener_hosts: list[str] = Field(
        default_factory=lambda: [
            "bit.ly", "tinyurl.com", "t.co", "goo.gl", "ow.ly", "is.gd", "buff.ly", "rebrand.ly",
            "cutt.ly", "t.ly", "shorturl.at", "rb.gy", "tiny.cc", "s.id", "lnkd.in",
        ]
    )
    max_subdomains: int = 3
    max_length: int = 200

    @field_validator("brands", "protected_domains", "risky_tlds", "shortener_hosts")
    @classmethod
    def _normalise(cls, values: list[str]) -> list[str]:
        return _lowered(values)


@dataclass(frozen=True)
class HeuristicResult:
    score: float
    reasons: list[str]
    suspicious: bool


_ASCII_FOLDS = (("rn", "m"), ("vv", "w"), ("0", "o"), ("1", "l"))
# Where the package's table disagrees with Unicode TR39 skeletons: the Cyrillic palochka
# looks like `l` (as in a Cyrillic spelling of paypal.com), not like the `i` the table gives.
_OVERRIDES = {"\u04cf": "l", "\u04c0": "l"}


@cache
def _confusable_map() -> dict[str, str]:
    """Each character with an ASCII letter or digit homoglyph, mapped to that character."""
    from confusable_homoglyphs.confusables import confusables_data

    table: dict[str, str] = {}
    for char, glyphs in confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        for glyph in glyphs:
            c = glyph["c"]
            if len(c) == 1 and c.isascii() and c.isalnum():
                table[char] = c.lower()
                break
    return table | _OVERRIDES


@lru_cache(maxsize=4096)
def skeleton(text: str) -> str:
    """`text` folded so look-alike spellings coincide (Cyrillic `paypal.com` → `paypal.com`)."""
    table = _confusable_map()
    folded = "".join(table.get(c, c) for c in text.lower())
    for seq, repl in _ASCII_FOLDS:
        folded = folded.replace(seq, repl)
    return folded


def _scripts(label: str) -> set[str]:
    from confusable_homoglyphs.categories import unique_aliases

    return {a for a in unique_aliases(label) if a not in ("COMMON", "INHERITED")}


def _within(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def _unicode_host(host: str) -> tuple[str, str | None]:
    """The host as people read it, and why it could not be decoded (if so)."""
    if "xn--" not in host:
        return host, None
    try:
        return idna.decode(host), None
    except idna.IDNAError as exc:
        return host, f"undecodable punycode host ({exc})"


def _split(url: str) -> WebURL:
    try:
        return parse(url)
    except InvalidURL as exc:
        raise HeuristicsError(f"cannot assess {url[:200]!r}: {exc.reason}") from None


def assess(url: str, config: HeuristicsConfig | None = None) -> HeuristicResult:
    """Score `url` against the heuristics; raises `HeuristicsError` if it is not a URL a browser opens."""
    config = config or HeuristicsConfig()
    w = config.weights
    # The browser's parse: every IPv4 spelling (0x5db8d822, 1572395042, octal, [::ffff:a.b.c.d]) is an
    # address literal here, and the host is the one the browser opens, whatever "\\" or "@" say.
    value = _split(url)
    host = value.network_host
    found: list[tuple[float, str]] = []

    if value.is_ip:
        found.append((w.ip_host, f"host is an IP address ({host})"))
    if value.userinfo:
        shown = unquote(value.userinfo)
        found.append((w.userinfo, f"userinfo in URL: shows {shown!r} but goes to {host!r}"))
    if not value.is_ip:
        found.extend(_name_signs(host, config))
    if len(url) > config.max_length:
        found.append((w.length, f"URL is {len(url)} characters long (over {config.max_length})"))

    score = float(round(sum(weight for weight, _ in found), 4))
    return HeuristicResult(score, [r for _, r in found], score >= config.threshold)


def _name_signs(host: str, config: HeuristicsConfig) -> list[tuple[float, str]]:
    w = config.weights
    found: list[tuple[float, str]] = []
    shown, undecodable = _unicode_host(host)
    if undecodable:
        found.append((w.punycode, undecodable))
    protected = next((p for p in config.protected_domains if _within(host, p)), None)

    if protected is None:
        twin = _lookalike(shown, config.protected_domains)
        if twin:
            found.append((w.lookalike, f"look-alike of protected domain {twin} ({shown})"))
        elif shown != host or not host.isascii():
            found.append((w.punycode, f"internationalised host {shown!r}"))
        mixed = [label for label in shown.split(".") if len(_scripts(label)) > 1]
        if mixed:
            found.append((w.mixed_script, f"mixed-script host label {mixed[0]!r}"))
        folded = skeleton(shown)
        brand = next((b for b in config.brands if b in folded), None)
        if brand and not twin:
            found.append((w.brand_in_host, f"brand name {brand!r} in a host outside its domains"))

    labels = host.split(".")
    if len(labels) - 2 > config.max_subdomains:
        found.append(
            (w.subdomains, f"{len(labels) - 2} subdomain levels (over {config.max_subdomains})")
        )
    if any(_within(host, s) for s in config.shortener_hosts):
        found.append((w.shortener, "shortener: expand before trusting"))
    if labels[-1] in config.risky_tlds:
        found.append((w.risky_tld, f"risky TLD .{labels[-1]}"))
    return found


def _lookalike(shown: str, protected: list[str]) -> str | None:
    """The protected domain whose skeleton `shown` (or a parent of it) shares, if any."""
    folded = skeleton(shown)
    for domain in protected:
        target = skeleton(domain)
        if folded == target or folded.endswith("." + target):
            return domain
    return None
