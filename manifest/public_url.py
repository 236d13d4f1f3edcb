"""The proxy's public URL as the manifest needs it, and which `validDomains` entries cover it.

Teams only opens https pages, so a public URL must be https. Plain http is accepted for
a loopback host (localhost, 127.0.0.1, ::1) because that is how the proxy runs on a
developer machine, for example next to the Agents Playground, which never reads the
manifest; such a package gets a warning, and Teams itself will refuse it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from manifest.errors import ManifestError

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
# RFC 3986 path characters; anything else would need escaping in the manifest's URLs.
_PATH = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")


@dataclass(frozen=True, slots=True)
class PublicURL:
    """A checked public URL: `base` has no trailing slash, `domain` is the validDomains entry."""

    base: str
    scheme: str
    host: str
    port: int | None

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS

    @property
    def domain(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port is not None else host


def _valid_host(host: str) -> bool:
    if host in LOOPBACK_HOSTS or _IPV4.match(host):
        return True
    labels = host.split(".")
    return len(host) <= 253 and all(_LABEL.match(label) for label in labels)


def parse_public_url(url: str, field: str = "public_url") -> PublicURL:
    """Check and split a public URL; bad input raises ManifestError naming `field`."""
    if not isinstance(url, str) or not url.strip():
        raise ManifestError(field, "is empty; give the proxy's public URL, like https://links.example.com")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ManifestError(field, f"{url!r} is not a URL ({exc})") from exc
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in {"https", "http"}:
        raise ManifestError(field, f"{url!r} must start with https://")
    if not host:
        raise ManifestError(field, f"{url!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise ManifestError(field, f"{url!r} must not carry a user name or password")
    if parts.query or parts.fragment:
        raise ManifestError(field, f"{url!r} must not have a query or fragment")
    if not _PATH.match(parts.path):
        raise ManifestError(field, f"{url!r} has characters in its path that must be escaped")
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError as exc:
        raise ManifestError(field, f"{url!r} has a host that is not a valid domain name") from exc
    if not _valid_host(host):
        raise ManifestError(field, f"{url!r} has a host that is not a valid domain name")
    if scheme == "http" and host not in LOOPBACK_HOSTS:
        raise ManifestError(
            field, f"{url!r} must be https (http is accepted only for localhost/127.0.0.1)"
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    path = parts.path.rstrip("/")
    return PublicURL(base=f"{scheme}://{netloc}{path}", scheme=scheme, host=host, port=port)


def domain_covers(entry: str, host: str, port: int | None) -> bool:
    """Whether one validDomains entry covers `host[:port]`.

    `*.example.com` stands for exactly one label, as in Teams. An entry without a port
    covers the host on any port; one with a port covers only that port.
    """
    entry = entry.strip().lower()
    entry_port: int | None = None
    if entry.startswith("["):
        closing = entry.find("]")
        entry_host, rest = entry[1:closing], entry[closing + 1 :]
        if rest.startswith(":") and rest[1:].isdigit():
            entry_port = int(rest[1:])
    else:
        entry_host, _, port_text = entry.partition(":")
        if port_text:
            if not port_text.isdigit():
                return False
            entry_port = int(port_text)
    if entry_port is not None and entry_port != port:
        return False
    if entry_host.startswith("*."):
        head, _, tail = host.partition(".")
        return bool(head) and tail == entry_host[2:]
    return entry_host == host
