"""Registrable domains and IP hosts, from the Public Suffix List snapshot bundled with tldextract.

The extractor is built with no suffix-list URLs and no cache directory, so it reads only the
snapshot shipped inside the package and never touches the network or the disk at run time.
"""

from __future__ import annotations

import functools
import ipaddress

import tldextract


@functools.cache
def _extractor() -> tldextract.TLDExtract:
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


def suffix_parts(host: str) -> tldextract.ExtractResult:
    """``host`` split at its public suffix (subdomain, domain, suffix), by the bundled snapshot only."""
    return _extractor()(host)


@functools.cache
def public_suffix_labels() -> frozenset[str]:
    """Last labels of every ICANN public suffix, in Unicode and in punycode (lowercase)."""
    labels: set[str] = set()
    for suffix in _extractor().tlds:
        last = suffix.rsplit(".", 1)[-1].lower()
        labels.add(last)
        if not last.isascii():
            try:
                labels.add(last.encode("idna").decode("ascii"))
            except UnicodeError:
                continue
    return frozenset(labels)


def is_ip(host: str) -> bool:
    """True for an IPv4 address in dotted-decimal form or an IPv6 address (bracketed or not)."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def registrable_domain(host: str) -> str:
    """The eTLD+1 of ``host`` (``a.b.example.co.uk`` → ``example.co.uk``).

    IP hosts come back unchanged; a host that is itself a public suffix, or has no known
    suffix (``localhost``), comes back lowercased and without trailing dots.
    """
    cleaned = host.strip().rstrip(".").lower()
    if is_ip(cleaned):
        return cleaned
    parts = suffix_parts(cleaned)
    if parts.domain and parts.suffix:
        return f"{parts.domain}.{parts.suffix}"
    return cleaned
