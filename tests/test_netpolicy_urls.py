"""The network policy, URL by URL: refused when a webhook is created and before each attempt,
allowed when NOTIFIER_ALLOWED_NETWORKS covers the address, and redirects never followed.

Only loopback is ever connected to: 10.0.0.1 and 169.254.169.254 go through the create-time
check alone, which resolves IP literals without touching the network.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from config import load_settings
from notifier.errors import InvalidNotificationConfig, RetryableDeliveryError
from notifier.http import HttpClient
from notifier.methods import CreateContext
from notifier.methods.webhook import WebhookMethod
from notifier.netpolicy import Network, parse_networks, url_allowed
from tests.receivers import Receiver

NOTHING_ALLOWED: tuple[Network, ...] = ()
COVERING_NETWORKS = "127.0.0.0/8,::1/128,0.0.0.0/32,10.0.0.0/8,169.254.169.254/32"


def loopback_name_from_hosts() -> str | None:
    """A name other than localhost that /etc/hosts gives 127.0.0.1 and that resolves to it."""
    try:
        lines = Path("/etc/hosts").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if not fields or fields[0] != "127.0.0.1":
            continue
        for name in fields[1:]:
            if not name.startswith("localhost") and resolves_to_loopback_only(name):
                return name
    return None


def resolves_to_loopback_only(name: str) -> bool:
    try:
        infos = socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False
    return infos[0][4][0] == "127.0.0.1" and all(
        ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


HOSTS_NAME = loopback_name_from_hosts()
needs_hosts_name = pytest.mark.skipif(HOSTS_NAME is None,
                                      reason="no /etc/hosts name for 127.0.0.1 besides localhost")

# The host part of a URL, as written after "http://".
LOOPBACK_HOSTS = [
    "127.0.0.1",
    "localhost",
    "[::1]",
    "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
    "0.0.0.0",
    "2130706433",  # 127.0.0.1 as one decimal number
    pytest.param(HOSTS_NAME, id="etc-hosts-name", marks=needs_hosts_name),
]
NEVER_CONNECTED_HOSTS = ["10.0.0.1", "169.254.169.254"]
ALL_HOSTS = LOOPBACK_HOSTS + NEVER_CONNECTED_HOSTS
# test_netpolicy.py::test_http_client_refuses_a_loopback_receiver covers 127.0.0.1 and localhost.
REFUSED_BEFORE_CONNECTING = LOOPBACK_HOSTS[2:]


@pytest.fixture
def covering(monkeypatch) -> tuple[Network, ...]:
    """The networks of NOTIFIER_ALLOWED_NETWORKS set to cover every address here."""
    monkeypatch.setenv("NOTIFIER_ALLOWED_NETWORKS", COVERING_NETWORKS)
    return parse_networks(load_settings().allowed_networks)


@pytest.fixture
def receiver():
    """A receiver on 127.0.0.1 and, on the same port and with the same handler, on [::1]."""
    receiver = Receiver()
    ipv6 = Ipv6Server(("::1", receiver.server.server_port), receiver.server.RequestHandlerClass)
    threading.Thread(target=ipv6.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    yield receiver
    ipv6.shutdown()
    ipv6.server_close()
    receiver.close()


class Ipv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True


def url_of(host: str, receiver: Receiver | None = None) -> str:
    port = f":{receiver.server.server_port}" if receiver else ""
    return f"http://{host}{port}/hook"


def http_client(allowed: tuple[Network, ...]) -> HttpClient:
    return HttpClient(timeout_s=5, allowed=allowed, user_agent="notifier", retry_after_max_s=60)


# --- when a webhook is created --------------------------------------------------------------------

@pytest.mark.parametrize("host", ALL_HOSTS)
def test_url_allowed_refuses_the_address(host):
    assert url_allowed(url_of(host), NOTHING_ALLOWED) is False


@pytest.mark.parametrize("host", ALL_HOSTS)
def test_a_webhook_to_the_address_is_refused(host):
    with pytest.raises(InvalidNotificationConfig,
                       match=r"^Invalid webhook URL: .*, which the network policy refuses "
                             r"\(NOTIFIER_ALLOWED_NETWORKS allows networks\)$"):
        WebhookMethod().validate_config({"url": url_of(host)},
                                        CreateContext("acme/web", NOTHING_ALLOWED))


@pytest.mark.parametrize("host", ALL_HOSTS)
def test_covered_addresses_are_allowed_when_a_webhook_is_created(host, covering):
    config = WebhookMethod().validate_config({"url": url_of(host)},
                                             CreateContext("acme/web", covering))

    assert url_allowed(url_of(host), covering) is True
    assert config["url"] == url_of(host)


# --- before each attempt --------------------------------------------------------------------------

@pytest.mark.parametrize("host", REFUSED_BEFORE_CONNECTING)
def test_an_attempt_to_the_address_fails_before_connecting(host, receiver):
    with pytest.raises(RetryableDeliveryError) as caught:
        http_client(NOTHING_ALLOWED).post_json(url_of(host, receiver), b"{}")

    assert (caught.value.kind, caught.value.status_code) == ("forbidden_address", None)
    assert "which the network policy refuses (this worker has NOTIFIER_ALLOWED_NETWORKS" \
        in str(caught.value)
    assert receiver.requests == []


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
def test_an_attempt_to_a_covered_address_is_delivered(host, receiver, covering):
    result = http_client(covering).post_json(url_of(host, receiver), b"{}")

    assert result.status_code == 200
    assert len(receiver.wait_for(1)) == 1


# --- redirects ------------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [302, 307])  # every 3xx: test_http.py
@pytest.mark.parametrize("target_host", ["127.0.0.1", "0.0.0.0", "[::1]"])
def test_a_redirect_is_a_failed_attempt_and_is_not_followed(status, target_host):
    """Only 127.0.0.1/32 is allowed and the redirect points back at the same receiver: following
    it would end in a success (127.0.0.1) or a forbidden address (0.0.0.0, [::1])."""
    receiver = Receiver(statuses=[status, 200])
    receiver.headers["Location"] = url_of(target_host, receiver)
    try:
        with pytest.raises(RetryableDeliveryError) as caught:
            http_client(parse_networks(["127.0.0.1/32"])).post_json(receiver.url, b"{}")
    finally:
        receiver.close()

    assert (caught.value.kind, caught.value.status_code) == ("redirect", status)
    assert len(receiver.requests) == 1
