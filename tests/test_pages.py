"""Rendered pages are kept with a slot for the token: a kept page is byte for byte a fresh rendering."""

from __future__ import annotations

import pytest

from proxy.pages import Branding, Pages

HOSTILE = 'https://evil.example/"><script>alert(1)</script>'
CASES = [
    ("warning.html", dict(url=HOSTILE, host="evil.example", verdict="malicious",
                          why="<b>listed</b>", notice=None)),
    ("scan.html", dict(url=HOSTILE, host="evil.example", refresh_seconds=5,
                       continue_label="Continue without waiting (not recommended)")),
]


@pytest.mark.parametrize(("template", "context"), CASES)
def test_kept_page_equals_a_fresh_rendering_for_each_token(template: str, context: dict[str, object]) -> None:
    """Each click's token lands where a fresh rendering puts it, escaped, and nowhere else."""
    kept = Pages()
    branding = Branding("Contoso", None, "Ask IT <it@contoso.com>")
    for token in ("tok-1.1700000000.k1.mac", "tok-2.1700000000.k1.other", "a<b>&\"'"):
        body = kept.render(template, branding=branding, token=token, **context).body
        fresh = Pages().render(template, branding=branding, token=token, **context).body
        assert body == fresh
        assert b"<script>alert(1)" not in body


def test_page_without_token_is_kept_too() -> None:
    """A page with no click-through (token None) is the same page every time."""
    p = Pages()
    first = p.render("blocked.html", url=HOSTILE, host="evil.example", token=None).body
    assert p.render("blocked.html", url=HOSTILE, host="evil.example", token=None).body == first
    assert p.kept == 1
    assert b'name="token"' not in first


def test_different_inputs_are_different_pages() -> None:
    """Anything shown on a page is part of what the kept copy is found by."""
    p = Pages()
    a = p.render("warning.html", url="https://a.example/", host="a.example", token="t", verdict="malicious",
                 why="Your security team marked this site as phishing.", notice=None).body
    b = p.render("warning.html", url="https://b.example/", host="b.example", token="t", verdict="malicious",
                 why="A threat feed lists this site as malware.", notice=None).body
    assert b"a.example" in a and b"b.example" in b and b"a.example" not in b


def test_kept_pages_are_bounded() -> None:
    """Past the bound the oldest page is dropped; a flood of distinct error pages takes no more room."""
    p = Pages(keep=5)
    for n in range(20):
        p.error(400, "This link is damaged", "x", url=f"https://junk{n}.example/")
    assert p.kept == 5


def test_pages_with_very_long_addresses_are_not_kept() -> None:
    """A page showing an address of several kilobytes is rendered every time instead of kept."""
    p = Pages()
    body = p.error(414, "This link is too long", "x", url="https://long.example/" + "a" * 20_000).body
    assert b"long.example" in body and p.kept == 0


WHY_CASES = [
    ("admin", "malicious", ("Phish",), "Your security team marked this site as phishing."),
    ("admin", "suspicious", (), "Your security team marked this site as suspicious."),
    ("feed:urlhaus", "malicious", ("malware_download",), "A threat feed lists this site as malware."),
    ("feed:local", "malicious", ("malicious",), "A threat feed lists this site as dangerous."),
    ("safebrowsing", "malicious", ("phishing",), "Google Safe Browsing lists this site as phishing."),
    ("scan", "malicious", ("malicious",), "A scan of this site found it dangerous."),
    ("heuristics", "suspicious", (), "The address has signs of phishing."),
    ("scan", "pending", (), "This site has not been checked yet."),
    ("feed:x", "clean", (), None),
]


@pytest.mark.parametrize(("source", "verdict", "threats", "sentence"), WHY_CASES)
def test_why_speaks_to_the_person_who_clicked(source: str, verdict: str, threats: tuple[str, ...],
                                              sentence: str | None) -> None:
    """The warning's "Why" names who judged the site and what it is, never the expression or who set it."""
    from proxy.why import why
    from shared.verdicts import Verdict, VerdictResult

    result = VerdictResult(Verdict(verdict), source=source, threat_types=threats,
                           reasons=("admin verdict on evil.example/: set by cli",))
    assert why(result) == sentence


@pytest.mark.parametrize(
    ("reasons", "sentence"),
    [
        (("look-alike of protected domain paypal.com (paypa1.com)", "heuristic score 5 >= 4"),
         "The address has signs of phishing: its name imitates paypal.com."),
        (("userinfo in URL: shows 'bank.example' but goes to 'paypa1.com'", "host is an IP address (10.0.0.1)"),
         "The address has signs of phishing: it shows one name but goes to another site and it is a bare IP address."),
        (("heuristic score 5 >= 4",), "The address has signs of phishing."),
    ],
)
def test_heuristic_why_names_the_signs_in_plain_words(reasons: tuple[str, ...], sentence: str) -> None:
    """A heuristic verdict's "Why" says which signs were seen, without scores or thresholds."""
    from proxy.why import why
    from shared.verdicts import Verdict, VerdictResult

    assert why(VerdictResult(Verdict.SUSPICIOUS, source="heuristics", reasons=reasons)) == sentence
