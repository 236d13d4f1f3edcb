"""URL heuristics: each sign named, scored against the threshold, never more than suspicious."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.verdicts.heuristics import (
    HeuristicsConfig,
    HeuristicsError,
    HeuristicWeights,
    assess,
    skeleton,
)

CONFIG = HeuristicsConfig()


@pytest.mark.parametrize(
    ("url", "reason_starts", "suspicious"),
    [
        ("http://192.168.1.1/login", ["host is an IP address"], True),
        ("http://[2001:db8::1]/", ["host is an IP address"], True),
        ("http://3232235777/", ["host is an IP address"], True),
        ("http://0x7f.1/", ["host is an IP address"], True),
        ("https://bank.com@evil.example/", ["userinfo in URL: shows 'bank.com'"], True),
        # paypal.com with Cyrillic er, a and u
        ("https://\u0440\u0430\u0443\u0440\u0430l.com/signin",
         ["look-alike of protected domain paypal.com", "mixed-script host label"], True),
        ("https://xn--80aa0cbo65f.com/", ["look-alike of protected domain paypal.com"], True),
        ("https://xn--l-7sba6dbr.com/", ["look-alike of protected domain paypal.com",
                                         "mixed-script host label"], True),
        ("http://xn--pypal-4ve.com/", ["look-alike of protected domain paypal.com",
                                       "mixed-script host label"], True),
        ("https://paypa1.com/", ["look-alike of protected domain paypal.com"], True),
        ("https://rnicrosoft.com/", ["look-alike of protected domain microsoft.com"], True),
        ("https://login.m\u0456crosoft.com/", ["look-alike of protected domain microsoft.com",
                                          "mixed-script host label"], True),
        ("https://paypal-secure.top/", ["brand name 'paypal'", "risky TLD .top"], True),
        ("https://bücher.example/", ["internationalised host"], False),
        ("https://a.b.c.d.e.example.com/", ["5 subdomain levels (over 3)"], False),
        ("https://bit.ly/3xYz", ["shortener: expand before trusting"], False),
        ("https://www.tinyurl.com/abc", ["shortener: expand before trusting"], False),
        ("https://files.example.zip/", ["risky TLD .zip"], False),
        ("https://example.com/" + "a" * 300, ["URL is 320 characters long"], False),
        ("https://login.microsoftonline.com/common/oauth2", [], False),
        ("https://paypal.com/", [], False),
        ("https://www.example.com/docs?q=1", [], False),
    ],
)
def test_signs_table(url: str, reason_starts: list[str], suspicious: bool) -> None:
    """Each sign produces its named reason; the score decides suspicious."""
    result = assess(url, CONFIG)
    assert len(result.reasons) == len(reason_starts), result.reasons
    for reason, start in zip(result.reasons, reason_starts, strict=True):
        assert reason.startswith(start), reason
    assert result.suspicious is suspicious
    assert result.score == pytest.approx(result.score) and result.score >= 0


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("\u0440\u0430\u0443\u0440\u0430l.com", "paypal.com"),
        ("PayPal.COM", "paypal.com"),
        ("paypa1.com", "paypal.com"),
        ("rnicrosoft.com", "microsoft.com"),
        ("\u0455\u04bb\u0430r\u0435\u0440\u043e\u0456nt.com", "sharepoint.com"),
        ("\u0440\u0430\u0443\u0440\u0430\u04cf.com", "paypal.com"),
        ("example.com", "example.com"),
    ],
)
def test_skeleton_folds_confusables(text: str, folded: str) -> None:
    """Homoglyphs fold to the ASCII spelling they imitate."""
    assert skeleton(text) == folded


def test_weights_and_threshold_are_configurable() -> None:
    """A heavier shortener weight or a lower threshold turns a sign into suspicious."""
    assert not assess("https://bit.ly/x", CONFIG).suspicious
    heavy = HeuristicsConfig(weights=HeuristicWeights(shortener=0.6))
    assert assess("https://bit.ly/x", heavy).suspicious
    low = HeuristicsConfig(threshold=0.25)
    assert assess("https://bit.ly/x", low).score == pytest.approx(0.3)
    assert assess("https://bit.ly/x", low).suspicious


def test_lists_are_configurable_and_normalised() -> None:
    """Custom protected domains, brands and TLDs are lower-cased and used."""
    config = HeuristicsConfig(
        protected_domains=["Contoso.COM."], brands=["Contoso"], risky_tlds=[".Biz".strip(".")],
        shortener_hosts=["go.contoso.com"],
    )
    assert config.protected_domains == ["contoso.com"]
    assert assess("https://c0nt0so.com/", config).reasons[0].startswith(
        "look-alike of protected domain contoso.com"
    )
    assert assess("https://contoso-login.biz/", config).reasons == [
        "brand name 'contoso' in a host outside its domains",
        "risky TLD .biz",
    ]
    assert assess("https://go.contoso.com/x", config).reasons == [
        "shortener: expand before trusting"
    ]


def test_score_sums_weights() -> None:
    """The score is the sum of the weights of the signs that fired."""
    result = assess("https://user@paypal-login.top/", CONFIG)
    w = CONFIG.weights
    assert result.score == pytest.approx(w.userinfo + w.brand_in_host + w.risky_tld)


@pytest.mark.parametrize("url", ["not a url", "/relative/path", "mailto:", "http://", ""])
def test_unassessable_input_raises(url: str) -> None:
    """Strings without a scheme and host raise HeuristicsError."""
    with pytest.raises(HeuristicsError):
        assess(url, CONFIG)


def test_unknown_config_keys_are_refused() -> None:
    """A misspelt setting is a validation error, not silently ignored."""
    with pytest.raises(ValidationError):
        HeuristicsConfig(treshold=0.4)  # type: ignore[call-arg]
