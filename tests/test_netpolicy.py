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

# Each refused address with what its refusal says it is.
FORBIDDEN = [
    ("127.0.0.1", "127.0.0.1 is a loopback address"),
    ("127.5.6.7", "127.5.6.7 is a loopback address"),
    ("::1", "::1 is a loopback address"),
    ("::ffff:127.0.0.1", "::ffff:127.0.0.1 is 127.0.0.1 in IPv6 form (IPv4-mapped), "
                         "a loopback address"),
    ("2002:7f00:1::", "2002:7f00:1:: is 127.0.0.1 in IPv6 form (6to4), a loopback address"),
    ("64:ff9b::7f00:1", "64:ff9b::7f00:1 is 127.0.0.1 in IPv6 form (NAT64), a loopback address"),
    ("::ffff:10.1.2.3", "::ffff:10.1.2.3 is 10.1.2.3 in IPv6 form (IPv4-mapped), "
                        "a private address"),
    ("10.0.0.1", "10.0.0.1 is a private address"),
    ("172.16.0.1", "172.16.0.1 is a private address"),
    ("192.168.1.1", "192.168.1.1 is a private address"),
    ("fc00::1", "fc00::1 is a private address"),
    ("100.64.0.1", "100.64.0.1 is a carrier-grade NAT address"),
    ("169.254.169.254", "169.254.169.254 is a cloud metadata address"),
    ("fd00:ec2::254", "fd00:ec2::254 is a cloud metadata address"),
    ("169.254.1.1", "169.254.1.1 is a link-local address"),
    ("fe80::1", "fe80::1 is a link-local address"),
    ("0.0.0.0", "0.0.0.0 is the unspecified address (it reaches this machine)"),
    ("::", ":: is the unspecified address (it reaches this machine)"),
    ("224.0.0.1", "224.0.0.1 is a multicast address"),
    ("ff02::1", "ff02::1 is a multicast address"),
    ("255.255.255.255", "255.255.255.255 is an address reserved for special use"),
    ("192.0.2.1", "192.0.2.1 is an address reserved for special use"),
    ("fec0::1", "fec0::1 is an address reserved for special use"),  # IPv6 site-local
    ("feff:ffff::1", "feff:ffff::1 is an address reserved for special use"),  # end of fec0::/10
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


@pytest.mark.parametrize(("address", "why"), FORBIDDEN)
def test_check_address_refuses_non_public_addresses_saying_what_they_are(address, why):
    with pytest.raises(ForbiddenAddress) as caught:
        check_address(ip(address), NOTHING_ALLOWED)

    assert str(caught.value) == f"{why}, which the network policy refuses"


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
def test_resolve_refuses_loopback_in_every_spelling(host):
    with pytest.raises(ForbiddenAddress, match="which the network policy refuses$"):
        resolve(host, 80, NOTHING_ALLOWED)


@pytest.mark.parametrize(("host", "message"), [
    ("localhost", "localhost resolves to 127.0.0.1, a loopback address, "
                  "which the network policy refuses"),
    ("2130706433", "2130706433 resolves to 127.0.0.1, a loopback address, "
                   "which the network policy refuses"),
    ("127.0.0.1", "127.0.0.1 is a loopback address, which the network policy refuses"),
])
def test_a_refused_name_is_shown_with_the_address_it_resolves_to(host, message):
    with pytest.raises(ForbiddenAddress) as caught:
        resolve(host, 80, NOTHING_ALLOWED)

    assert str(caught.value) == message


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


@pytest.mark.parametrize(("allowed", "setting"), [
    ((), "(this worker has NOTIFIER_ALLOWED_NETWORKS empty; set it where the workers run)"),
    (("10.0.0.0/8", "::1/128"), "(this worker has NOTIFIER_ALLOWED_NETWORKS=10.0.0.0/8,::1/128)"),
])
def test_a_refused_attempt_names_the_setting_this_worker_has(receiver, allowed, setting):
    """The notification may have been created where loopback was allowed: the attempt's error
    says what the worker itself runs with, which is what decides."""
    client = HttpClient(timeout_s=2, allowed=parse_networks(allowed), user_agent="notifier",
                        retry_after_max_s=60)

    with pytest.raises(RetryableDeliveryError) as caught:
        client.post_json(f"http://127.0.0.1:{port_of(receiver)}/hook", b"{}")

    assert str(caught.value) == \
        f"127.0.0.1 is a loopback address, which the network policy refuses {setting}"
    assert receiver.requests == []
