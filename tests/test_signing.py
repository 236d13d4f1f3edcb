"""Signed wrapped links: the contract of DESIGN.md (readable url, context, HMAC, key rotation)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from shared.clicks import Workload
from shared.signing import KeyConfigError, Keyring, LinkContext, LinkSigner, LinkStatus

KEY_A = "a:" + "aa" * 32
KEY_B = "b:" + "bb" * 32
BASE = "https://links.example.org"


def signer(spec: str = KEY_A, active: str = "") -> LinkSigner:
    return LinkSigner(Keyring.parse(spec, active), BASE)


def ctx(**kw: str) -> LinkContext:
    return LinkContext(workload=Workload.TEAMS, tenant="t-1", conversation="19:abc@thread.v2",
                       message="1700000000000", sender="mallory@evil.example", recipient="alice@contoso.com", **kw)


@pytest.mark.parametrize("original", [
    "https://example.com/a b?x=1&y=2#frag",
    "http://bücher.de/straße?q=例え&p=%2F+~_.-",
    "https://example.com/\u0000\x7f\U0001f600",
])
def test_wrapped_link_has_the_documented_shape(original: str) -> None:
    """A wrapped link is {public_url}/v1/url?url=<percent-encoded original>&data=…&sig=…."""
    link = signer().wrap(original, ctx())
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == BASE and parts.path == "/v1/url"
    assert parts.query.startswith("url=" + quote(original, safe="") + "&data=")
    q = parse_qs(parts.query)
    assert q["url"] == [original] and set(q) == {"url", "data", "sig"}


def test_decode_gives_back_url_and_context() -> None:
    """decode returns the original URL and every context field, and says valid."""
    s = signer()
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    result = s.decode(s.wrap("https://example.com/x", ctx(), now=now))
    assert result.status is LinkStatus.VALID and result.url == "https://example.com/x"
    assert result.context is not None
    assert result.context.recipient == "alice@contoso.com"
    assert result.context.sender == "mallory@evil.example"
    assert result.context.issued() == now and result.context.key_id == "a"


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda link: link.replace("example.com%2Fx", "evil.example%2Fx"), LinkStatus.TAMPERED),
        (lambda link: link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB"), LinkStatus.TAMPERED),
        (lambda link: link.replace("&sig=", "&sig=x"), LinkStatus.TAMPERED),
        (lambda link: link.split("&sig=")[0], LinkStatus.MALFORMED),
        (lambda link: link.replace("/v1/url", "/v2/url"), LinkStatus.NOT_OURS),
    ],
)
def test_tampering_is_detected(mutate, status) -> None:  # type: ignore[no-untyped-def]
    """Any change to url, data or sig breaks the signature; a cut link is malformed."""
    s = signer()
    assert s.decode(mutate(s.wrap("https://example.com/x", ctx()))).status is status


@pytest.mark.parametrize(
    ("mutate", "status", "url"),
    [
        # A browser sends "/v1/./url" and "\\v1\\url" as /v1/url: the proxy answers them, so they are ours.
        (lambda link: link.replace("/v1/url", "/v1/./url"), LinkStatus.VALID, "https://example.com/x"),
        (lambda link: link.replace("/v1/url", "\\v1\\url"), LinkStatus.VALID, "https://example.com/x"),
        # The proxy refuses a second url= outright; reading the last one would call a link valid that no
        # click can follow.
        (lambda link: link.replace("?url=", "?url=https%3A%2F%2Fevil.example%2F&url="), LinkStatus.MALFORMED, None),
        (lambda link: link + "&url=https%3A%2F%2Fevil.example%2F", LinkStatus.MALFORMED, None),
        (lambda link: link.replace("&data=", "&data=%FF"), LinkStatus.MALFORMED, None),
        (lambda link: "javascript:alert(1)", LinkStatus.NOT_OURS, None),
    ],
)
def test_decode_reads_the_link_as_the_proxy_does(mutate, status, url) -> None:  # type: ignore[no-untyped-def]
    """decode reads a wrapped link's path as a browser sends it and its parameters as the proxy reads them."""
    s = signer()
    result = s.decode(mutate(s.wrap("https://example.com/x", ctx())))
    assert result.status is status and result.url == url


def test_context_tampering_is_detected() -> None:
    """Changing the recipient in data (re-encoded validly) is caught by the MAC."""
    s = signer()
    link = s.wrap("https://example.com/x", ctx())
    q = parse_qs(urlsplit(link).query)
    forged = LinkContext.decode(q["data"][0])
    fields = {k: getattr(forged, k) for k in LinkContext._SHORT}
    forged_data = LinkContext(**{**fields, "recipient": "ceo@contoso.com"}).encode()
    assert s.verify(q["url"][0], forged_data, q["sig"][0]).status is LinkStatus.TAMPERED


def test_key_rotation_keeps_old_links_valid() -> None:
    """Links signed with a retired (still configured) key verify; new links use the active key."""
    old = signer(KEY_A).wrap("https://example.com/x", ctx())
    rotated = signer(f"{KEY_A},{KEY_B}", active="b")
    assert rotated.decode(old).status is LinkStatus.VALID
    fresh = rotated.decode(rotated.wrap("https://example.com/x", ctx()))
    assert fresh.context is not None and fresh.context.key_id == "b"


def test_removed_key_is_unknown() -> None:
    """Once a key is dropped from the configuration its links say 'unknown key'."""
    old = signer(KEY_A).wrap("https://example.com/x", ctx())
    assert signer(KEY_B).decode(old).status is LinkStatus.UNKNOWN_KEY


def test_own_links_are_not_wrapped_twice() -> None:
    """Wrapping a link that is already ours returns it unchanged."""
    s = signer()
    link = s.wrap("https://example.com/x", ctx())
    assert s.wrap(link, ctx()) == link


@pytest.mark.parametrize(
    "spec",
    ["", "nokey", "a:", "a:" + "ab" * 4, "a:zz!!", "a:b:c" ],
)
def test_bad_key_configuration_is_refused(spec: str) -> None:
    """Short, missing or unparsable keys are refused with a reason."""
    with pytest.raises(KeyConfigError):
        Keyring.parse(spec)


def test_active_key_must_exist() -> None:
    """Naming an active key that is not configured is an error."""
    with pytest.raises(KeyConfigError):
        Keyring.parse(KEY_A, active="zz")


@pytest.mark.parametrize("kid", ["k.1", "k:1", "k,1", "k 1", "k'1", 'k"1', "k/1", "ké", "k" * 33, ""])
def test_key_ids_hold_no_separator(kid: str) -> None:
    """A key id is 1-32 letters, digits, '_' or '-': never a token separator such as '.'."""
    with pytest.raises(KeyConfigError, match="signing key id"):
        Keyring({kid: b"k" * 32}, kid)


def test_a_dotted_key_id_cannot_forge_a_token_shape() -> None:
    """The id of every accepted key survives a click-through token's split on '.'."""
    from proxy import tokens

    ring = Keyring({"k_1-a": b"k" * 32}, "k_1-a")
    assert tokens.verify(ring, tokens.issue(ring, "r1", 60, now=0.0), now=1.0) == "r1"
