"""The network policy: which addresses an outgoing call may reach.

Nothing here connects anywhere except the loopback receiver; public addresses are only checked.
"""

from __future__ import annotations

import ipaddress

import pytest

from notifier.errors import RetryableDeliveryError
from notifier.http import HttpClient
from notifier.netpolicy import ForbiddenAddress, check_address, parse_networks, resolve
from tests.receivers import Receiver

NOTHING_ALLOWED = ()

FORBIDDEN = [
    "127.0.0.1",
    "127.5.6.7",
    "::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "2002:7f00:1::",  # 6to4 around 127.0.0.1
    "64:ff9b::7f00:1",  # NAT64 around 127.0.0.1
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",  # carrier-grade NAT
    "169.254.169.254",  # cloud metadata
    "fe80::1",
    "fc00::1",
    "fec0::1",  # IPv6 site-local
    "feff:ffff::1",  # the end of fec0::/10
    "0.0.0.0",
    "::",
    "224.0.0.1",
    "ff02::1",
    "255.255.255.255",
]

LOOPBACK_HOSTS = [
    "127.0.0.1",
    "localhost",
    "::1",
    "::ffff:127.0.0.1",
    "2130706433",  # 127.0.0.1 as one decimal number
    "0x7f000001",
    "127.1",
    "2002:7f00:1::",
    "64:ff9b::7f00:1",
]


def ip(text: str):
    return ipaddress.ip_address(text)


@pytest.mark.parametrize("address", FORBIDDEN)
def test_check_address_refuses_non_public_addresses(address):
    with pytest.raises(ForbiddenAddress, match="not allowed by the network policy"):
        check_address(ip(address), NOTHING_ALLOWED)


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
def test_resolve_refuses_loopback_in_every_spelling(host):
    with pytest.raises(ForbiddenAddress, match="not allowed by the network policy"):
        resolve(host, 80, NOTHING_ALLOWED)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_check_address_lets_public_addresses_through(address):
    check_address(ip(address), NOTHING_ALLOWED)


@pytest.mark.parametrize(
    ("address", "networks"),
    [
        ("127.0.0.1", ["127.0.0.0/8"]),
        ("::ffff:127.0.0.1", ["127.0.0.0/8"]),
        ("2002:7f00:1::", ["127.0.0.0/8"]),
        ("64:ff9b::7f00:1", ["127.0.0.0/8"]),
        ("::1", ["::1/128"]),
        ("10.0.0.1", ["192.168.0.0/16", "10.0.0.0/8"]),
        ("169.254.169.254", ["169.254.169.254/32"]),
    ],
)
def test_allowed_networks_let_their_addresses_through(address, networks):
    check_address(ip(address), parse_networks(networks))


@pytest.mark.parametrize(
    ("address", "networks"),
    [
        ("10.0.0.1", ["127.0.0.0/8"]),
        ("169.254.169.254", ["10.0.0.0/8"]),
        ("::1", ["127.0.0.0/8"]),
        ("127.0.0.1", ["::1/128"]),
        ("0.0.0.0", ["127.0.0.0/8"]),
    ],
)
def test_an_allowed_network_opens_nothing_else(address, networks):
    with pytest.raises(ForbiddenAddress):
        check_address(ip(address), parse_networks(networks))


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "2130706433"])
def test_resolve_returns_the_checked_address(host):
    assert resolve(host, 80, parse_networks(["127.0.0.0/8"])) == ip("127.0.0.1")


# --- through the HTTP helper ----------------------------------------------------------------------

@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def port_of(receiver: Receiver) -> int:
    return receiver.server.server_port


@pytest.mark.parametrize(
    "url_template",
    [
        "http://127.0.0.1:{port}/hook",
        "http://localhost:{port}/hook",
        "http://user:hunter2@127.0.0.1:{port}/hook?token=SECRET",
    ],
)
def test_http_client_refuses_a_loopback_receiver(receiver, url_template):
    client = HttpClient(timeout_s=2, allowed=NOTHING_ALLOWED, user_agent="notifier",
                        retry_after_max_s=60)

    with pytest.raises(RetryableDeliveryError) as caught:
        client.post_json(url_template.format(port=port_of(receiver)), b"{}")

    assert caught.value.kind == "forbidden_address"
    assert caught.value.status_code is None
    assert "hunter2" not in str(caught.value) and "SECRET" not in str(caught.value)
    assert receiver.requests == []
