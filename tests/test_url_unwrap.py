"""Undoing Defender Safe Links, the Teams Safe Links jump page and Proofpoint URL Defense."""

from __future__ import annotations

import base64
import string
from urllib.parse import quote

import pytest

from shared.urls import unwrap

TARGET = "https://www.example.com/path/page.html?q=1&r=two#frag"
RUN_LETTERS = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


def safe_links(url: str, host: str = "nam01.safelinks.protection.outlook.com") -> str:
    """Wrap like Defender Safe Links in e-mail."""
    return (
        f"https://{host}/?url={quote(url, safe='')}"
        "&data=05%7C01%7Cuser%40contoso.com%7Cabc%7C0%7C0%7C638270991332215354%7CUnknown"
        "&sdata=AbCdEf%3D&reserved=0"
    )


def teams_jump(url: str, host: str = "statics.teams.cdn.office.net", n: int = 1) -> str:
    """Wrap like the Teams Safe Links jump page."""
    return (
        f"https://{host}/evergreen-assets/safelinks/{n}/atp-safelinks.html"
        f"?url={quote(url, safe='')}"
        "&locale=en-us&dest=https%3A%2F%2Fteams.microsoft.com%2Fapi%2Fmt%2Fpart%2Femea-02"
        "%2Fbeta%2Fatpsafelinks%2Fgeturlreputationsitev2%2F&pc=opaque"
    )


def proofpoint_v1(url: str) -> str:
    """Wrap like URL Defense v1 (percent-encoded u)."""
    return f"https://urldefense.proofpoint.com/v1/url?u={quote(url, safe='')}&k=abc%0A&r=x&m=y&s=z"


def proofpoint_v2(url: str) -> str:
    """Wrap like URL Defense v2 ('%' → '-', '/' → '_')."""
    escaped = quote(url, safe="").replace("-", "%2D").replace("_", "%5F")
    encoded = escaped.replace("%2F", "_").replace("%", "-")
    return f"https://urldefense.proofpoint.com/v2/url?u={encoded}&d=DwMFaQ&c=abc&r=x&m=y&s=z&e="


def proofpoint_v3(url: str, unsafe: str = "?=&#%;!$*") -> str:
    """Wrap like URL Defense v3: unsafe characters become '*' (one) or '**X' (a run)."""
    body: list[str] = []
    taken: list[str] = []
    index = 0
    while index < len(url):
        run = 0
        while index + run < len(url) and url[index + run] in unsafe and run < len(RUN_LETTERS) + 1:
            run += 1
        if run == 0:
            body.append(url[index])
            index += 1
            continue
        body.append("*" if run == 1 else "**" + RUN_LETTERS[run - 2])
        taken.append(url[index : index + run])
        index += run
    packed = base64.urlsafe_b64encode("".join(taken).encode("utf-8")).decode("ascii").rstrip("=")
    return f"https://urldefense.com/v3/__{''.join(body)}__;{packed}!!CUST0MER!tok3n$"


WRAPPED = [
    (safe_links(TARGET), TARGET),
    (safe_links(TARGET, "eur03.safelinks.protection.outlook.com"), TARGET),
    (safe_links(TARGET, "gcc02.safelinks.protection.office365.us"), TARGET),
    (safe_links(TARGET, "can01.safelinks.protection.partner.outlook.cn"), TARGET),
    (teams_jump(TARGET), TARGET),
    (teams_jump(TARGET, n=2), TARGET),
    (teams_jump(TARGET, "staticsint.teams.cdn.office.net"), TARGET),
    (teams_jump(TARGET, "teams.public.onecdn.static.microsoft"), TARGET),
    (proofpoint_v1(TARGET), TARGET),
    (proofpoint_v2(TARGET), TARGET),
    (
        "https://urldefense.proofpoint.com/v2/url?u=https-3A__example.com_path-3Fa-3D1-26b-3D2&d=DwMF&c=x",
        "https://example.com/path?a=1&b=2",
    ),
    (proofpoint_v3(TARGET), TARGET),
    (proofpoint_v3("https://example.com/a??==b"), "https://example.com/a??==b"),
    (proofpoint_v3("https://example.com/" + "?" * 30), "https://example.com/" + "?" * 30),
    (
        "https://urldefense.com/v3/__https://example.com/a*b__;Pw!!tokens$",
        "https://example.com/a?b",
    ),
    (
        "https://urldefense.com/v3/__https://example.com/plain__;!!tokens$",
        "https://example.com/plain",
    ),
    (
        "https://urldefense.com/v3/__https:/example.com/one-slash__;!!tokens$",
        "https://example.com/one-slash",
    ),
    (proofpoint_v3("https://пример.рф/путь?ключ=значение"), "https://пример.рф/путь?ключ=значение"),
]


@pytest.mark.parametrize(("wrapped", "original"), WRAPPED)
def test_known_wrappers_are_undone(wrapped: str, original: str) -> None:
    """Each known rewriter's link gives back the original URL."""
    assert unwrap(wrapped) == original


def test_nested_wrappers_are_undone() -> None:
    """Wrappers inside wrappers are undone layer by layer."""
    nested = teams_jump(safe_links(proofpoint_v2(proofpoint_v3(TARGET))))
    assert unwrap(nested) == TARGET


def test_depth_limit_stops_unwrapping() -> None:
    """No more than max_depth layers are removed."""
    layers = TARGET
    for _ in range(4):
        layers = safe_links(layers)
    assert unwrap(layers, max_depth=3) == safe_links(TARGET)
    assert unwrap(layers, max_depth=4) == TARGET


LEFT_ALONE = [
    TARGET,
    "https://example.com/?url=https%3A%2F%2Fevil.com",
    "https://safelinks.protection.outlook.com.evil.com/?url=https%3A%2F%2Fevil.com",
    "https://statics.teams.cdn.office.net/other/page.html?url=https%3A%2F%2Fx.com",
    "https://urldefense.proofpoint.com/v9/url?u=x",
    "mailto:someone@example.com",
    "not a url at all",
    "",
    "http://[::1",
    # Malformed wrappers: recognised, but they do not decode.
    "https://nam01.safelinks.protection.outlook.com/?data=05%7C01&reserved=0",
    "https://nam01.safelinks.protection.outlook.com/?url=&data=05",
    "https://urldefense.proofpoint.com/v2/url?d=DwMF&c=x",
    "https://urldefense.com/v3/__https://example.com/a*b__;@@@!!tokens$",
    "https://urldefense.com/v3/__https://example.com/a*b*c__;Pw!!tokens$",
    "https://urldefense.com/v3/__https://example.com/a**~b__;Pz8!!tokens$",
    "https://urldefense.com/v3/no-double-underscore",
]


@pytest.mark.parametrize("url", LEFT_ALONE)
def test_other_and_malformed_links_come_back_unchanged(url: str) -> None:
    """Links that are not wrapped, or whose wrapper is malformed, are returned as given."""
    assert unwrap(url) == url
