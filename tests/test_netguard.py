"""SSRF guard: private, loopback and embedded-IPv4 addresses refused after resolution."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Mapping, Sequence

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from shared.netguard import (
    BlockedAddress,
    GuardedResolver,
    ResolutionFailed,
    blocked_reason,
    guarded_session,
    resolve_public,
)


class TableResolver(AbstractResolver):
    """A resolver answering from a fixed table of names, like a zone file."""

    def __init__(self, table: Mapping[str, Sequence[str]]) -> None:
        self.table = table

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            ResolveResult(
                hostname=host,
                host=addr,
                port=port,
                family=socket.AF_INET6 if ":" in addr else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for addr in self.table[host]
        ]

    async def close(self) -> None:
        return None


ZONE = TableResolver(
    {
        "public.test": ["93.184.215.14"],
        "public6.test": ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
        "loop.test": ["127.0.0.1"],
        "ten.test": ["10.1.2.3"],
        "v6loop.test": ["::1"],
        "mapped.test": ["::ffff:127.0.0.1"],
        "mapped-ten.test": ["::ffff:10.0.0.1"],
        "metadata.test": ["169.254.169.254"],
        "cgnat.test": ["100.64.1.1"],
        "ula.test": ["fd12:3456::1"],
        "mixed.test": ["93.184.215.14", "192.168.1.10"],
        "empty.test": [],
    }
)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.255.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.10", "not globally routable"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fc00::1", "unique-local"),
        ("fdff:ffff::1", "unique-local"),
        ("fe80::1", "link-local"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "IPv6 form of a loopback address"),
        ("::ffff:10.0.0.1", "IPv6 form of a private address"),
        ("::127.0.0.1", "IPv6 form of a loopback address"),
        ("64:ff9b::a9fe:a9fe", "IPv6 form of a link-local address"),
        ("2002:7f00:1::1", "IPv6 form of a loopback address"),
        ("93.184.215.14", None),
        ("8.8.8.8", None),
        ("100.128.0.1", None),
        ("2606:4700::1111", None),
        ("::ffff:8.8.8.8", None),
    ],
)
def test_blocked_reason_table(address: str, reason: str | None) -> None:
    """Each non-public range is refused with its name; public addresses pass."""
    assert blocked_reason(address) == reason


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("loop.test", "127.0.0.1"),
        ("ten.test", "10.1.2.3"),
        ("v6loop.test", "::1"),
        ("mapped.test", "::ffff:127.0.0.1"),
        ("mapped-ten.test", "::ffff:10.0.0.1"),
        ("metadata.test", "169.254.169.254"),
        ("cgnat.test", "100.64.1.1"),
        ("ula.test", "fd12:3456::1"),
        ("mixed.test", "192.168.1.10"),
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
    ],
)
async def test_resolve_public_refuses_private(host: str, address: str) -> None:
    """Names (and literals) that reach a private address raise BlockedAddress naming it."""
    with pytest.raises(BlockedAddress) as info:
        await resolve_public(host, 443, resolver=ZONE)
    assert info.value.address == address


@pytest.mark.parametrize(
    "host", ["loop.test", "ten.test", "v6loop.test", "mapped.test", "mixed.test", "127.0.0.1"]
)
async def test_allow_private_lets_them_through(host: str) -> None:
    """With allow_private=True the same names resolve normally."""
    assert await resolve_public(host, 443, allow_private=True, resolver=ZONE)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("public.test", ["93.184.215.14"]),
        ("public6.test", ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"]),
        ("8.8.8.8", ["8.8.8.8"]),
    ],
)
async def test_public_names_resolve(host: str, expected: list[str]) -> None:
    """Public names return their addresses."""
    assert await resolve_public(host, 80, resolver=ZONE) == expected


@pytest.mark.parametrize("host", ["nowhere.test", "empty.test"])
async def test_unresolvable_names(host: str) -> None:
    """A name without an address raises ResolutionFailed."""
    with pytest.raises(ResolutionFailed):
        await resolve_public(host, 80, resolver=ZONE)


async def test_allow_networks_exempts_one_range() -> None:
    """An explicitly allowed network passes while other private ranges stay refused."""
    allowed = [ipaddress.ip_network("10.1.0.0/16")]
    assert await resolve_public("ten.test", 80, resolver=ZONE, allow_networks=allowed)
    with pytest.raises(BlockedAddress):
        await resolve_public("loop.test", 80, resolver=ZONE, allow_networks=allowed)


async def test_guarded_resolver_wraps_inner() -> None:
    """GuardedResolver returns the inner answer for public names and refuses private ones."""
    guarded = GuardedResolver(ZONE)
    assert (await guarded.resolve("public.test", 80))[0]["host"] == "93.184.215.14"
    with pytest.raises(BlockedAddress):
        await guarded.resolve("mapped.test", 80)


@pytest.fixture
async def redirector() -> AsyncIterator[int]:
    """A loopback server on 127.0.0.2 that answers /ok and redirects elsewhere."""

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def to_name(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://loop.test:{request.url.port}/ok")

    async def to_literal(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://127.0.0.1:{request.url.port}/ok")

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/to-name", to_name)
    app.router.add_get("/to-literal", to_literal)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.2", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield port
    await runner.cleanup()


SERVER_ZONE = TableResolver({"feeds.test": ["127.0.0.2"], "loop.test": ["127.0.0.1"]})
ALLOW_SERVER = [ipaddress.ip_network("127.0.0.2/32")]


async def test_session_reaches_allowed_server(redirector: int) -> None:
    """A guarded session fetches from an address it is allowed to reach."""
    guarded = guarded_session(resolver=SERVER_ZONE, allow_networks=ALLOW_SERVER)
    async with guarded as session, session.get(f"http://feeds.test:{redirector}/ok") as resp:
        assert await resp.text() == "ok"


@pytest.mark.parametrize("path", ["/to-name", "/to-literal"])
async def test_redirect_to_private_address_is_refused(redirector: int, path: str) -> None:
    """A redirect hop to a private name or address literal raises BlockedAddress."""
    async with guarded_session(resolver=SERVER_ZONE, allow_networks=ALLOW_SERVER) as session:
        with pytest.raises(BlockedAddress):
            await session.get(f"http://feeds.test:{redirector}{path}")


async def test_first_hop_literal_is_refused(redirector: int) -> None:
    """A URL naming a loopback address directly never connects."""
    async with guarded_session(resolver=SERVER_ZONE) as session:
        with pytest.raises(BlockedAddress):
            await session.get(f"http://127.0.0.2:{redirector}/ok")


async def test_allow_private_session_follows_redirects(redirector: int) -> None:
    """With allow_private a redirect to a loopback name is followed."""
    zone = TableResolver({"feeds.test": ["127.0.0.2"], "loop.test": ["127.0.0.2"]})
    guarded = guarded_session(resolver=zone, allow_private=True)
    async with guarded as session, session.get(f"http://feeds.test:{redirector}/to-name") as resp:
        assert await resp.text() == "ok"
        assert len(resp.history) == 1
