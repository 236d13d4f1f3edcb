"""Google Safe Browsing v4 against a local stand-in: prefixes, full hashes, caches, waits, freshness, notice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest

from safelinks.server import create_app
from shared.urls import canonicalize, expressions
from shared.verdicts import Verdict, VerdictResult
from shared.verdicts.safebrowsing import NOTICE, SafeBrowsingProvider
from shared.verdicts.sb_lists import ChecksumMismatch, PrefixList, SafeBrowsingClient, duration
from tests.conftest import FakeClock
from tests.proxy_fixtures import Proxy
from tests.safebrowsing_standin import KEY, SafeBrowsingStandin, digest, safebrowsing_standin

PHISH = "http://login.phish.example.com/owa/"
MALWARE = "http://files.bad.example.com/a.exe"


@asynccontextmanager
async def sb(mode: str = "update", **kw: Any) -> AsyncIterator[tuple[SafeBrowsingProvider, SafeBrowsingStandin,
                                                                       FakeClock]]:
    listed = {"SOCIAL_ENGINEERING": {"login.phish.example.com/"}, "MALWARE": {"files.bad.example.com/a.exe"}}
    async with safebrowsing_standin(listed=listed, **kw) as server:
        clock = FakeClock()
        provider = SafeBrowsingProvider(SafeBrowsingClient(server.url, KEY, "tests"), clock, mode=mode,
                                        threat_types=["MALWARE", "SOCIAL_ENGINEERING"], backoff_base=60)
        try:
            yield provider, server, clock
        finally:
            await provider.close()


async def check(provider: SafeBrowsingProvider, url: str) -> VerdictResult | None:
    canon = canonicalize(url)
    return await provider.check(canon, expressions(canon))


async def test_listed_url_confirmed_by_full_hash_carries_the_notice() -> None:
    """A prefix hit is confirmed with fullHashes:find; the verdict names the threat and carries Google's notice."""
    async with sb() as (provider, server, _):
        assert await provider.refresh() is True
        found = await check(provider, PHISH + "index.php?x=1")
        assert found is not None and found.verdict is Verdict.MALICIOUS and found.source == "safebrowsing"
        assert found.threat_types == ("phishing",) and found.notice == NOTICE
        malware = await check(provider, MALWARE)
        assert malware is not None and malware.threat_types == ("malware",)
        assert server.calls["full"] == 2


async def test_unlisted_url_never_reaches_the_api() -> None:
    """A URL whose hashes hit no local prefix is answered locally."""
    async with sb() as (provider, server, _):
        await provider.refresh()
        assert await check(provider, "https://example.org/fine") is None
        assert server.calls["full"] == 0


async def test_positive_and_negative_caches() -> None:
    """Confirmed hashes are cached for cacheDuration; a prefix without a full hash for negativeCacheDuration."""
    decoy_expr = "decoy.example.com/"
    async with sb(decoys={"MALWARE": {digest(decoy_expr)[:4]}}) as (provider, server, clock):
        await provider.refresh()
        assert await check(provider, PHISH) is not None
        assert await check(provider, PHISH) is not None
        assert await check(provider, "http://decoy.example.com/") is None
        assert await check(provider, "http://decoy.example.com/") is None
        assert server.calls["full"] == 2
        clock.now += timedelta(seconds=301)
        await provider.refresh()
        assert await check(provider, PHISH) is not None and server.calls["full"] == 3


async def test_partial_update_applies_removals_and_additions() -> None:
    """A partial update removes by index and adds prefixes; the checksum holds; the state moves."""
    async with sb() as (provider, server, clock):
        await provider.refresh()
        server.listed["SOCIAL_ENGINEERING"] = {"new.phish.example.com/"}
        clock.now += timedelta(minutes=31)
        assert await provider.refresh() is True
        last: Any = server.requests[-1]["listUpdateRequests"]
        assert all(r["state"] for r in last)
        assert await check(provider, PHISH) is None
        assert await check(provider, "http://new.phish.example.com/x") is not None


async def test_checksum_mismatch_resets_the_list() -> None:
    """A list that does not hash to the server's checksum is dropped and fetched whole next time."""
    async with sb(corrupt_checksum=True) as (provider, _, _):
        assert await provider.refresh() is False
        assert all(len(lst) == 0 and lst.state == "" for lst in provider.lists.values())
        assert "checksum" in provider.last_error


async def test_minimum_wait_duration_is_obeyed() -> None:
    """No list update before minimumWaitDuration has passed."""
    async with sb(minimum_wait="600.5s") as (provider, server, clock):
        assert await provider.refresh() is True
        clock.now += timedelta(seconds=300)
        assert await provider.refresh() is False and server.calls["update"] == 1
        clock.now += timedelta(seconds=301)
        assert await provider.refresh() is True and server.calls["update"] == 2


async def test_stale_lists_never_warn() -> None:
    """Lists not updated within 30 minutes do not make a URL unsafe."""
    async with sb() as (provider, _, clock):
        await provider.refresh()
        clock.now += timedelta(minutes=31)
        assert await check(provider, PHISH) is None
        assert provider.health_detail()["fresh"] is False


async def test_errors_back_off() -> None:
    """A failing update backs off exponentially before the next attempt."""
    clock = FakeClock()
    dead = SafeBrowsingClient("http://127.0.0.1:9", KEY, "tests")  # nothing listens there
    provider = SafeBrowsingProvider(dead, clock, backoff_base=60)
    try:
        assert await provider.refresh() is False
        first_wait = provider.next_update_at - clock().timestamp()
        assert 60 <= first_wait <= 120
        clock.now += timedelta(seconds=first_wait + 1)
        assert await provider.refresh() is False
        assert 120 <= provider.next_update_at - clock().timestamp() <= 240
        assert provider.health_detail()["last_error"]
    finally:
        await provider.close()


async def test_lookup_mode_with_cache() -> None:
    """Lookup mode asks threatMatches:find once per URL and caches the answer."""
    async with sb(mode="lookup") as (provider, server, _):
        found = await check(provider, PHISH)
        assert found is not None and found.notice == NOTICE and found.threat_types == ("phishing",)
        assert await check(provider, PHISH) is not None
        assert await check(provider, "https://example.org/") is None
        assert server.calls["lookup"] == 2


@pytest.mark.parametrize(("text", "seconds"), [("593.440s", 593.44), ("0s", 0.0), ("", 7.0), (None, 7.0)])
def test_durations(text: Any, seconds: float) -> None:
    """Protobuf JSON durations parse to seconds; anything else takes the default."""
    assert duration(text, 7.0) == seconds


def test_removal_past_the_end_resets() -> None:
    """A removal index the local list does not have is a mismatch, not a crash."""
    lst = PrefixList("MALWARE")
    with pytest.raises(ChecksumMismatch):
        lst.apply({"responseType": "PARTIAL_UPDATE", "removals": [{"rawIndices": {"indices": [3]}}]})


async def test_warning_page_shows_googles_notice(aiohttp_client: Any, make_settings: Any) -> None:
    """A proxy-role process updates its own lists; a Safe Browsing warning carries Google's notice."""
    async with safebrowsing_standin(listed={"SOCIAL_ENGINEERING": {"login.phish.example.com/"}}) as server:
        settings = make_settings(safebrowsing_mode="update", safebrowsing_api_key=KEY, safebrowsing_url=server.url)
        proxy = Proxy(await aiohttp_client(create_app(settings, role="proxy", clock=FakeClock())))
        services = proxy.services
        [provider] = [p for p in services.verdicts.providers if isinstance(p, SafeBrowsingProvider)]
        for _ in range(100):  # a proxy-role process keeps its own lists current
            if provider.fresh:
                break
            await asyncio.sleep(0.02)
        assert provider.fresh and server.calls["update"] == 1
        resp = await proxy.click(proxy.link(PHISH))
        html = await resp.text()
        assert resp.status == 200 and "Advisory provided by Google" in html
        [click] = await proxy.stored()
        assert click.verdict_source == "safebrowsing"
        other = await proxy.click(proxy.link("http://malicious.safelinks.invalid/"))
        assert "Advisory provided by Google" not in await other.text()
