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


# What a refusal tells people to do, where the refused address is being set up.
ALLOW_HINT = "NOTIFIER_ALLOWED_NETWORKS allows networks"

_METADATA = (ipaddress.ip_network("169.254.169.254/32"), ipaddress.ip_network("fd00:ec2::254/128"),
             ipaddress.ip_network("100.100.100.200/32"))
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_PRIVATE = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("172.16.0.0/12"),
            ipaddress.ip_network("192.168.0.0/16"), ipaddress.ip_network("fc00::/7"))


class ForbiddenAddress(Exception):
    """The host resolves to an address the policy refuses (or does not resolve at all)."""


class Unresolvable(ForbiddenAddress):
    """The host name does not resolve (now): nothing to connect to, nothing known to refuse."""


class RefusedAddress(ForbiddenAddress):
    """The policy refuses this address; the message says what kind of address it is, e.g.
    ``localhost resolves to 127.0.0.1, a loopback address, which the network policy refuses``."""

    def __init__(self, ip: IPAddress, host: str | None = None):
        self.ip = ip
        self.host = host
        what = describe(ip)
        if host is None or _is_literal(host, ip):
            text = f"{_shown(ip)} is {what}"
        else:
            text = f"{host} resolves to {_shown(ip)}, {what}"
        super().__init__(f"{text}, which the network policy refuses")


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


def _shown(ip: IPAddress) -> str:
    """The address as people write it (``::ffff:127.0.0.1``, not ``::ffff:7f00:1``)."""
    return f"::ffff:{ip.ipv4_mapped}" if ip.version == 6 and ip.ipv4_mapped else str(ip)


def _is_literal(host: str, ip: IPAddress) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")) == ip
    except ValueError:
        return False


def _wrapping(ip: IPAddress) -> str:
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped"
    return "6to4" if ip.sixtofour is not None else "NAT64"


def describe(ip: IPAddress) -> str:
    """What kind of non-public address ``ip`` is: ``a loopback address``, ``a private address``...

    An IPv6 address wrapping an IPv4 one is described by the address it wraps."""
    inner = _embedded_ipv4(ip)
    if inner != ip and not is_public(inner):
        return f"{inner} in IPv6 form ({_wrapping(ip)}), {describe(inner)}"
    if ip.is_unspecified:
        return "the unspecified address (it reaches this machine)"
    if ip.is_loopback:
        return "a loopback address"
    if _in_any(ip, _METADATA):
        return "a cloud metadata address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip in _SHARED:
        return "a carrier-grade NAT address"
    if _in_any(ip, _PRIVATE):
        return "a private address"
    return "an address reserved for special use"


def _in_any(ip: IPAddress, networks: Iterable[Network]) -> bool:
    return any(ip in net for net in networks if net.version == ip.version)


def is_public(ip: IPAddress) -> bool:
    for candidate in {ip, _embedded_ipv4(ip)}:
        if (candidate.is_private or candidate.is_loopback or candidate.is_link_local
                or candidate.is_multicast or candidate.is_reserved or candidate.is_unspecified
                or not candidate.is_global
                or any(candidate in net for net in (*EXTRA_BLOCKED_NET_RANGES, *REFUSED_NETWORKS)
                       if net.version == candidate.version)):
            return False
    return True


def check_address(ip: IPAddress, allowed: tuple[Network, ...], host: str | None = None) -> None:
    """Raise RefusedAddress unless the policy lets us connect to ``ip`` (``host``'s address)."""
    inner = _embedded_ipv4(ip)
    if any(a in net for net in allowed for a in {ip, inner} if a.version == net.version):
        return
    if not is_public(ip):
        raise RefusedAddress(ip, host)


def resolve(host: str, port: int, allowed: tuple[Network, ...]) -> IPAddress:
    """Resolve ``host`` once and return its first address, checked against the policy."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise Unresolvable(f"host {host!r} does not resolve") from None
    ip = ipaddress.ip_address(infos[0][4][0].split("%", 1)[0])
    check_address(ip, allowed, host)
    return ip


def url_refusal(url: str, allowed: tuple[Network, ...],
                schemes: tuple[str, ...] = ("http", "https")) -> str | None:
    """Create-time check: why ``url`` cannot be used, or None when it may be.

    It must have one of ``schemes`` and a host that does not resolve to a refused address. A
    name that does not resolve today passes: every attempt checks again before connecting.
    """
    try:
        parts = urlsplit(url)
        if parts.scheme not in schemes:
            return "it must start with " + " or ".join(f"{s}://" for s in schemes)
        if not parts.hostname:
            return "it has no host"
        resolve(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), allowed)
    except Unresolvable:
        return None
    except RefusedAddress as exc:
        return f"{exc} ({ALLOW_HINT})"
    except ValueError:
        return "it is not a valid URL (check the host and port)"
    return None


def url_allowed(url: str, allowed: tuple[Network, ...]) -> bool:
    """Whether ``url`` passes the create-time check (``url_refusal`` says why not)."""
    return url_refusal(url, allowed) is None


def worker_refusal(refused: ForbiddenAddress, allowed: tuple[Network, ...]) -> str:
    """A refusal at send time, naming the setting this process has: the one that decides, and
    not necessarily the one the notification was created with."""
    if not isinstance(refused, RefusedAddress):
        return str(refused)
    if not allowed:
        return (f"{refused} (this worker has NOTIFIER_ALLOWED_NETWORKS empty; "
                f"set it where the workers run)")
    networks = ",".join(str(net) for net in allowed)
    return f"{refused} (this worker has NOTIFIER_ALLOWED_NETWORKS={networks})"
