"""SSRF guard: outbound fetches reach only public addresses, checked after DNS resolution.

A URL that comes from a chat message (a scan) or a configured feed must not make this
service talk to its own network: loopback, RFC 1918, link-local (cloud metadata at
169.254.169.254), CGNAT, unique-local IPv6, multicast, reserved space, and IPv6 forms that
embed one of those IPv4 addresses (mapped, compatible, NAT64, 6to4, Teredo). The check runs on
the addresses a name resolves to, and the connection then uses exactly those addresses, so a
second DNS answer cannot slip a private address in between (rebinding).

For aiohttp: `guarded_session()` wires a `GuardedResolver` (names) and an `IPLiteralGuard`
client middleware (URLs whose host is an address, which aiohttp never sends to a resolver);
both run again on every redirect hop.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_middlewares import ClientHandlerType
from yarl import URL

from shared.errors import SafeLinksError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAMED_RANGES: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(net), reason)
    for net, reason in (
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "carrier-grade NAT"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("ff00::/8", "multicast"),
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPAT = ipaddress.ip_network("::/96")


class NetguardError(SafeLinksError):
    """Base of the SSRF guard's errors."""


class BlockedAddress(NetguardError):
    """A host is, or resolves to, an address this service must not connect to."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"{host} resolves to {address} ({reason}): refused")
        self.host = host
        self.address = address
        self.reason = reason


class ResolutionFailed(NetguardError):
    """A name did not resolve to any address."""


def blocked_reason(address: IPAddress | str) -> str | None:
    """Why connecting to `address` is refused, or None when it is a public address."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(ip.packed)
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            inner = blocked_reason(embedded)
            return f"IPv6 form of a {inner} address" if inner else None
    for network, reason in _NAMED_RANGES:
        if ip.version == network.version and ip in network:
            return reason
    if not ip.is_global:
        return "not globally routable"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or (ip in _IPV4_COMPAT and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def check_addresses(
    host: str,
    addresses: Iterable[str],
    *,
    allow_private: bool = False,
    allow_networks: Sequence[IPNetwork] = (),
) -> None:
    """Raise `BlockedAddress` if any of `addresses` is refused.

    One bad address refuses the whole name: a name that answers with a public and a private
    address is a rebinding attempt, not a reason to try the public one first.
    """
    if allow_private:
        return
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if any(ip.version == net.version and ip in net for net in allow_networks):
            continue
        reason = blocked_reason(ip)
        if reason:
            raise BlockedAddress(host, address, reason)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve_public(
    host: str,
    port: int,
    *,
    allow_private: bool = False,
    resolver: AbstractResolver | None = None,
    allow_networks: Sequence[IPNetwork] = (),
) -> list[str]:
    """Resolve `host` and return its addresses, refusing any that are not public.

    `resolver` is any aiohttp resolver (the default is aiohttp's threaded getaddrinfo).
    Raises `BlockedAddress`, or `ResolutionFailed` when the name has no address.
    """
    literal = _literal(host)
    if literal is not None:
        check_addresses(
            host, [str(literal)], allow_private=allow_private, allow_networks=allow_networks
        )
        return [str(literal)]
    own = resolver is None
    active = resolver or aiohttp.ThreadedResolver()
    try:
        results = await active.resolve(host, port, family=socket.AF_UNSPEC)
    except OSError as exc:
        raise ResolutionFailed(f"{host} does not resolve: {exc}") from exc
    finally:
        if own:
            await active.close()
    addresses = list(dict.fromkeys(r["host"] for r in results))
    if not addresses:
        raise ResolutionFailed(f"{host} does not resolve to any address")
    check_addresses(host, addresses, allow_private=allow_private, allow_networks=allow_networks)
    return addresses


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that refuses names resolving to non-public addresses."""

    def __init__(
        self,
        inner: AbstractResolver | None = None,
        *,
        allow_private: bool = False,
        allow_networks: Sequence[IPNetwork] = (),
    ) -> None:
        self._inner = inner
        self._allow_private = allow_private
        self._allow_networks = tuple(allow_networks)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            # ThreadedResolver binds the running loop, so it is made on first use.
            self._inner = aiohttp.ThreadedResolver()
        results = await self._inner.resolve(host, port, family)
        check_addresses(
            host,
            (r["host"] for r in results),
            allow_private=self._allow_private,
            allow_networks=self._allow_networks,
        )
        return results

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


class IPLiteralGuard:
    """aiohttp client middleware refusing URLs whose host is a non-public address.

    aiohttp connects to an address literal without asking the resolver, so this covers the
    case `GuardedResolver` cannot see, including a redirect to `http://169.254.169.254/`.
    """

    def __init__(
        self, *, allow_private: bool = False, allow_networks: Sequence[IPNetwork] = ()
    ) -> None:
        self._allow_private = allow_private
        self._allow_networks = tuple(allow_networks)

    async def __call__(
        self, request: aiohttp.ClientRequest, handler: ClientHandlerType
    ) -> aiohttp.ClientResponse:
        host = request.url.raw_host or ""
        literal = _literal(host)
        if literal is not None:
            check_addresses(
                host,
                [str(literal)],
                allow_private=self._allow_private,
                allow_networks=self._allow_networks,
            )
        return await handler(request)


def guarded_session(
    *,
    allow_private: bool = False,
    allow_networks: Sequence[IPNetwork] = (),
    resolver: AbstractResolver | None = None,
    **session_kwargs: Any,
) -> aiohttp.ClientSession:
    """A ClientSession whose every hop (first request and redirects) passes the guard.

    Call from a running event loop; `resolver` replaces the system resolver underneath.
    """
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(
            resolver, allow_private=allow_private, allow_networks=allow_networks
        )
    )
    guard = IPLiteralGuard(allow_private=allow_private, allow_networks=allow_networks)
    return aiohttp.ClientSession(connector=connector, middlewares=(guard,), **session_kwargs)


class BlockedEndpoint(NetguardError):
    """A URL is not one of the endpoints this service may call (or resolves where it must not)."""


_LOOPBACK_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address (``127.0.0.0/8``, ``::1``, bracketed or not)."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    literal = _literal(name)
    return literal is not None and literal.is_loopback


def _origin_and_path(url: str) -> tuple[str, str, int, str] | None:
    """(scheme, host, port, path) of an http(s) URL without userinfo; None for anything else."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return None
    scheme = (parsed.scheme or "").lower()
    if scheme not in _DEFAULT_PORTS or not parsed.raw_host or parsed.raw_user or parsed.raw_password:
        return None
    try:
        port = parsed.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        return None
    return scheme, parsed.raw_host.lower().rstrip("."), port, parsed.raw_path or "/"


def endpoint_base(url: str, bases: Sequence[str], *, allow_loopback: bool = False) -> str | None:
    """The entry of ``bases`` that ``url`` falls under (same scheme, host and port, path below the
    entry's), ``"loopback"`` for a loopback URL when ``allow_loopback``, or None: not a permitted endpoint."""
    target = _origin_and_path(url)
    if target is None:
        return None
    scheme, host, port, path = target
    for base in bases:
        allowed = _origin_and_path(base)
        if allowed is not None and allowed[:3] == (scheme, host, port) and path.startswith(allowed[3]):
            return base
    if allow_loopback and is_loopback_host(host):
        return "loopback"
    return None


async def check_endpoint(
    url: str,
    bases: Sequence[str],
    *,
    allow_loopback: bool = False,
    resolver: AbstractResolver | None = None,
) -> None:
    """Raise ``BlockedEndpoint`` unless ``url`` is under one of ``bases`` (or on loopback, when allowed)
    and its host resolves only to addresses the guard accepts: public ones, or loopback ones when the
    URL was permitted as loopback or its configured base itself names a loopback host. A name that does
    not resolve raises ``ResolutionFailed`` (worth another try later), not ``BlockedEndpoint``."""
    base = endpoint_base(url, bases, allow_loopback=allow_loopback)
    if base is None:
        raise BlockedEndpoint(f"{url[:200]!r} is not a permitted endpoint")
    parsed = _origin_and_path(url)
    assert parsed is not None  # endpoint_base accepted it
    _, host, port, _ = parsed
    on_loopback = is_loopback_host(host)
    try:
        await resolve_public(host, port, resolver=resolver,
                             allow_networks=_LOOPBACK_NETWORKS if on_loopback else ())
    except BlockedAddress as exc:
        raise BlockedEndpoint(f"{url[:200]!r}: {exc}") from exc
