"""The network policy for outgoing calls: which addresses a notification may reach.

Resolve once, refuse loopback, private, link-local, multicast, reserved and unspecified addresses
(and their IPv6 forms), unless an allowed network of the settings contains the address; the
caller then connects to the address that was checked, so DNS rebinding cannot slip through.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Iterable
from urllib.parse import urlsplit

from requests_hardened.ip_filter import EXTRA_BLOCKED_NET_RANGES

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Refused too, though Python counts them global: IPv6 site-local (deprecated, still routed inside
# some sites).
REFUSED_NETWORKS = (ipaddress.ip_network("fec0::/10"),)


class ForbiddenAddress(Exception):
    """The host resolves to an address the policy refuses (or does not resolve at all)."""


class Unresolvable(ForbiddenAddress):
    """The host name does not resolve (now): nothing to connect to, nothing known to refuse."""


def parse_networks(networks: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in networks)


def _embedded_ipv4(ip: IPAddress) -> IPAddress:
    """The IPv4 address inside an IPv4-mapped, 6to4 or NAT64 IPv6 address, if any."""
    if ip.version == 4:
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def is_public(ip: IPAddress) -> bool:
    for candidate in {ip, _embedded_ipv4(ip)}:
        if (candidate.is_private or candidate.is_loopback or candidate.is_link_local
                or candidate.is_multicast or candidate.is_reserved or candidate.is_unspecified
                or not candidate.is_global
                or any(candidate in net for net in (*EXTRA_BLOCKED_NET_RANGES, *REFUSED_NETWORKS)
                       if net.version == candidate.version)):
            return False
    return True


def check_address(ip: IPAddress, allowed: tuple[Network, ...]) -> None:
    """Raise ForbiddenAddress unless the policy lets us connect to ``ip``."""
    inner = _embedded_ipv4(ip)
    if any(a in net for net in allowed for a in {ip, inner} if a.version == net.version):
        return
    if not is_public(ip):
        raise ForbiddenAddress(f"address {ip} is not allowed by the network policy")


def resolve(host: str, port: int, allowed: tuple[Network, ...]) -> IPAddress:
    """Resolve ``host`` once and return its first address, checked against the policy."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise Unresolvable(f"host {host!r} does not resolve") from None
    ip = ipaddress.ip_address(infos[0][4][0].split("%", 1)[0])
    check_address(ip, allowed)
    return ip


def url_allowed(url: str, allowed: tuple[Network, ...]) -> bool:
    """Create-time check: an http(s) URL with a host that does not resolve to a refused address.

    A name that does not resolve today passes: every attempt checks again before connecting.
    """
    parts = urlsplit(url)
    try:
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        resolve(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), allowed)
    except Unresolvable:
        return True
    except (ForbiddenAddress, ValueError):
        return False
    return True
