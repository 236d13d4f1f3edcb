"""Verified links: only links that parse and whose signature checks out are remembered, within a bound."""

from __future__ import annotations

import pytest
from aiohttp import web

from proxy.verified import VerifiedLinks
from safelinks.api import setup_api
from shared.clicks import Workload
from shared.linkparams import BadLink
from shared.signing import Keyring, LinkContext, LinkSigner

BASE = "https://links.example.org"
SIGNER = LinkSigner(Keyring.parse("a:" + "aa" * 32, ""), BASE)
CTX = LinkContext(workload=Workload.TEAMS, tenant="t-1", recipient="alice@contoso.com")


def query(url: str) -> str:
    return SIGNER.wrap(url, CTX).split("?", 1)[1]


def test_valid_link_is_read_once_and_remembered() -> None:
    """A valid link comes back with its target, context and Location header, and is kept."""
    links = VerifiedLinks(SIGNER)
    raw = query("https://example.com/a%2Fb?x=1")
    link = links.admit(raw)
    assert (link.url, link.location, link.host) == ("https://example.com/a%2Fb?x=1",
                                                     "https://example.com/a%2Fb?x=1", "example.com")
    assert link.context.recipient == "alice@contoso.com"
    assert links.admit(raw) is link and len(links) == 1


@pytest.mark.parametrize("mutate", [
    lambda q: q.replace("sig=", "sig=0"),                      # tampered MAC
    lambda q: q.replace("example.com", "evil.example"),        # tampered target
    lambda q: q + "&url=https%3A%2F%2Fevil.example",           # parameter pollution
    lambda q: q.split("&sig=")[0],                             # cut off
])
def test_invalid_links_are_refused_and_never_remembered(mutate) -> None:  # type: ignore[no-untyped-def]
    """A damaged or forged link raises BadLink every time and takes no room in the memory."""
    links = VerifiedLinks(SIGNER)
    raw = mutate(query("https://example.com/page"))
    for _ in range(2):
        with pytest.raises(BadLink) as exc:
            links.admit(raw)
        assert 400 <= exc.value.status < 500
    assert len(links) == 0


def test_memory_is_bounded_oldest_first() -> None:
    """Past its size the oldest link is forgotten; a forgotten link is verified again, not refused."""
    links = VerifiedLinks(SIGNER, maxsize=3)
    raws = [query(f"https://example.com/{n}") for n in range(5)]
    for raw in raws:
        links.admit(raw)
    assert len(links) == 3
    assert links.admit(raws[0]).url == "https://example.com/0"


def test_long_links_are_verified_but_not_kept() -> None:
    """A link longer than the kept size is checked on every click instead of pinned in memory."""
    links = VerifiedLinks(SIGNER, max_query=200)
    raw = query("https://example.com/" + "x" * 300)
    assert links.admit(raw).url.endswith("x" * 300)
    assert len(links) == 0


def test_api_adds_no_middleware_to_the_server() -> None:
    """The API guards its own handlers: a middleware anywhere would put aiohttp's middleware chain on every click."""
    app = web.Application()
    setup_api(app)
    apps = [app, *(r._app for r in app.router.resources() if isinstance(r, web.PrefixedSubAppResource))]
    assert len(apps) == 2
    assert all(not a.middlewares for a in apps)
