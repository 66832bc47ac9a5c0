"""HTTPS webhooks with a client certificate (mutual TLS), against a real TLS receiver.

The receiver listens on 127.0.0.1 with certificates from trustme and requires a client
certificate issued by the client CA. The HTTP helper connects to the address the network policy
checked, so these tests also show that SNI and the certificate's host name still follow the URL.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme
from standardwebhooks.webhooks import Webhook

from config import ConfigurationError, load_settings
from notifier.errors import RetryableDeliveryError
from notifier.events import build_event_data
from notifier.http import HttpClient
from notifier.methods import CreateContext, DeliveryContext, Services
from notifier.methods.webhook import WebhookMethod
from notifier.models import utcnow
from notifier.netpolicy import parse_networks
from notifier.runtime import Runtime

LOOPBACK = parse_networks(["127.0.0.0/8"])
CLIENT_NAME = "notifier-webhooks"


# --- certificates ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pki:
    """Certificates for one test module, and the files our client reads."""

    server_ca: trustme.CA
    client_ca: trustme.CA
    ca_bundle: str  # the server CA, as the client's trust store
    client_cert: tuple[str, str]  # (certificate, key) issued by the client CA
    stranger_cert: tuple[str, str]  # (certificate, key) from a CA the receiver does not trust


def write_pair(leaf: trustme.LeafCert, folder: Path, name: str) -> tuple[str, str]:
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    return str(cert), str(key)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    server_ca, client_ca = trustme.CA(), trustme.CA(organization_name="notifier clients")
    server_ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    client_leaf = client_ca.issue_cert("notifier.example", common_name=CLIENT_NAME)
    stranger_leaf = trustme.CA().issue_cert("stranger.example", common_name="stranger")
    return Pki(server_ca, client_ca, str(folder / "ca.pem"),
               write_pair(client_leaf, folder, "client"),
               write_pair(stranger_leaf, folder, "stranger"))


# --- the receiver ---------------------------------------------------------------------------------

@dataclass
class Seen:
    host: str
    peer_cert: dict  # the client certificate, as ssl's getpeercert() describes it
    headers: dict[str, str]
    body: bytes


@dataclass
class TlsReceiver:
    """HTTPS on 127.0.0.1 (port 0) that requires a client certificate from ``client_ca``."""

    server_cert: trustme.LeafCert
    client_ca: trustme.CA
    requests: list[Seen] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)  # SNI of each handshake
    failures: list[BaseException] = field(default_factory=list)  # refused handshakes
    failed: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_cert.configure_cert(context)
        self.client_ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
        context.sni_callback = lambda _sock, name, _ctx: self.server_names.append(name)
        self.server = TlsServer(context, self)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def refusal(self, timeout_s: float = 5) -> BaseException:
        """The receiver's own error for the first connection it refused."""
        assert self.failed.wait(timeout_s), "the receiver refused no connection"
        return self.failures[0]

    def url(self, host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.server.server_port}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class TlsHandler(BaseHTTPRequestHandler):
    """Records each POST with the client certificate's subject; answers 200."""

    timeout = 5
    server: TlsServer

    def setup(self):
        self.request.settimeout(self.timeout)
        self.request.do_handshake()  # a refused client certificate fails here
        super().setup()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.receiver.requests.append(Seen(
            self.headers["Host"], self.request.getpeercert(),
            {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class TlsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext, receiver: TlsReceiver):
        super().__init__(("127.0.0.1", 0), TlsHandler)
        self.context = context
        self.receiver = receiver

    def get_request(self):
        """Wrap each connection; the handshake runs in the handler's thread, not the accept loop."""
        sock, address = super().get_request()
        return self.context.wrap_socket(sock, server_side=True,
                                        do_handshake_on_connect=False), address

    def handle_error(self, request, client_address):
        """Keep a refused handshake for the test instead of printing it."""
        self.receiver.failures.append(sys.exc_info()[1])
        self.receiver.failed.set()


@pytest.fixture
def receivers():
    """Makes TLS receivers; closes them all at the end."""
    made: list[TlsReceiver] = []

    def make(server_cert: trustme.LeafCert, client_ca: trustme.CA) -> TlsReceiver:
        made.append(TlsReceiver(server_cert, client_ca))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def receiver(pki, receivers) -> TlsReceiver:
    """The usual receiver: a certificate for 127.0.0.1 and localhost from the server CA."""
    return receivers(pki.server_ca.issue_cert("127.0.0.1", "localhost"), pki.client_ca)


def client(*, client_cert: tuple[str, str] | None, verify: bool | str) -> HttpClient:
    return HttpClient(timeout_s=5, allowed=LOOPBACK, user_agent="notifier",
                      retry_after_max_s=60, client_cert=client_cert, verify=verify)


def refusal(http: HttpClient, url: str) -> RetryableDeliveryError:
    with pytest.raises(RetryableDeliveryError) as caught:
        http.post_json(url, b"{}", present_client_cert=True)
    return caught.value


# --- mutual TLS -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("host", "sni"), [("127.0.0.1", None), ("localhost", "localhost")])
def test_our_client_certificate_is_presented_and_the_receiver_sees_it(pki, receiver, host, sni):
    http = client(client_cert=pki.client_cert, verify=pki.ca_bundle)

    result = http.post_json(receiver.url(host), b'{"a":1}', present_client_cert=True)

    assert (result.status_code, result.response_excerpt) == (200, "ok")
    [seen] = receiver.requests
    assert (("commonName", CLIENT_NAME),) in seen.peer_cert["subject"]
    assert (("organizationName", "notifier clients"),) in seen.peer_cert["issuer"]
    assert seen.body == b'{"a":1}'
    assert seen.host == f"{host}:{receiver.server.server_port}"
    assert receiver.server_names == [sni]  # SNI follows the URL's name, not the pinned address


def test_without_a_client_certificate_the_receiver_refuses_us(pki, receiver):
    error = refusal(client(client_cert=None, verify=pki.ca_bundle), receiver.url())

    assert error.kind in ("tls", "connection")
    assert receiver.refusal().reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE"
    assert receiver.requests == []


def test_a_client_certificate_from_another_ca_is_refused(pki, receiver):
    error = refusal(client(client_cert=pki.stranger_cert, verify=pki.ca_bundle), receiver.url())

    assert error.kind in ("tls", "connection")
    assert receiver.refusal().reason == "CERTIFICATE_VERIFY_FAILED"
    assert receiver.requests == []


def test_the_system_trust_store_refuses_the_receivers_own_ca(pki, receiver):
    error = refusal(client(client_cert=pki.client_cert, verify=True), receiver.url())

    assert error.kind == "tls"
    assert receiver.refusal().reason == "TLSV1_ALERT_UNKNOWN_CA"  # our client said so
    assert receiver.requests == []


# --- the certificate's host name is checked although we connect to the pinned address -------------

@pytest.mark.parametrize(
    ("names", "url_host"),
    [
        (["other.example"], "127.0.0.1"),
        (["other.example"], "localhost"),  # localhost resolves to the pinned 127.0.0.1
        (["localhost"], "127.0.0.1"),  # the right machine, but the URL named its address
        (["127.0.0.1"], "localhost"),
    ],
)
def test_a_certificate_for_another_name_is_refused(pki, receivers, names, url_host):
    receiver = receivers(pki.server_ca.issue_cert(*names), pki.client_ca)

    error = refusal(client(client_cert=pki.client_cert, verify=pki.ca_bundle),
                    receiver.url(url_host))

    assert error.kind == "tls"
    assert receiver.requests == []


def test_only_webhooks_present_the_client_certificate(pki, receiver):
    http = client(client_cert=pki.client_cert, verify=pki.ca_bundle)

    with pytest.raises(RetryableDeliveryError) as caught:
        http.post_json(receiver.url(), b"{}")  # as Slack, Flowdock and HipChat send

    assert caught.value.kind in ("tls", "connection") and receiver.requests == []


def test_a_certificate_for_the_urls_name_only_is_accepted(pki, receivers):
    receiver = receivers(pki.server_ca.issue_cert("localhost"), pki.client_ca)

    client(client_cert=pki.client_cert, verify=pki.ca_bundle).post_json(
        receiver.url("localhost"), b"{}", present_client_cert=True)

    assert len(receiver.requests) == 1


# --- settings -------------------------------------------------------------------------------------

@pytest.fixture
def environment(monkeypatch):
    """Only the variables a test passes itself are seen."""
    for name in list(os.environ):
        if name.upper().startswith("NOTIFIER_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("variable", ["webhook_client_cert", "webhook_client_key", "ca_bundle"])
def test_a_missing_tls_file_is_a_start_up_error_naming_its_variable(environment, pki, tmp_path,
                                                                    variable):
    cert, key = pki.client_cert
    files = {"webhook_client_cert": cert, "webhook_client_key": key, "ca_bundle": pki.ca_bundle}
    files[variable] = str(tmp_path / "missing.pem")

    with pytest.raises(ConfigurationError) as caught:
        load_settings(**files)

    assert f"NOTIFIER_{variable.upper()}: cannot read the file" in str(caught.value)


def test_a_certificate_and_key_that_do_not_load_are_a_start_up_error(environment, pki, tmp_path):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cert, _ = pki.client_cert

    with pytest.raises(ConfigurationError, match="not a usable certificate and key pair"):
        load_settings(webhook_client_cert=cert, webhook_client_key=str(garbage))


@pytest.mark.parametrize("given", ["webhook_client_cert", "webhook_client_key"])
def test_a_client_certificate_needs_its_key_and_a_key_its_certificate(environment, pki, given):
    cert, key = pki.client_cert
    path = cert if given == "webhook_client_cert" else key

    with pytest.raises(ConfigurationError, match="NOTIFIER_WEBHOOK_CLIENT_CERT and "
                                                 "NOTIFIER_WEBHOOK_CLIENT_KEY go together"):
        load_settings(**{given: path})


def test_the_runtime_sends_with_the_configured_certificate(environment, pki, receiver, tmp_path):
    cert, key = pki.client_cert
    settings = load_settings(
        webhook_client_cert=cert, webhook_client_key=key, ca_bundle=pki.ca_bundle,
        allowed_networks="127.0.0.0/8", database_url=f"sqlite:///{tmp_path / 'notifier.db'}",
    )

    Runtime.from_settings(settings).services.http.post_json(receiver.url(), b"{}",
                                                            present_client_cert=True)

    assert settings.client_cert == (cert, key)
    assert (("commonName", CLIENT_NAME),) in receiver.requests[0].peer_cert["subject"]


# --- a webhook with a body template, over mutual TLS ----------------------------------------------

def test_a_templated_webhook_is_signed_over_the_bytes_sent(pki, receiver, settings):
    webhook = WebhookMethod()
    template = '{"text": "${repository} pushed: ${updated_tags[*]}", "n": "${updated_tags}"}'
    config = webhook.validate_config({"url": receiver.url("localhost"), "template": template},
                                     CreateContext("acme/web", LOOPBACK))
    event_data = build_event_data("acme/web", "repo_push", {"updated_tags": ["v1", "镜像"]},
                                  server_hostname="registry.example.com", scheme="https")
    context = DeliveryContext(
        delivery_id=str(uuid.uuid4()), event="repo_push", repository="acme/web",
        event_data=event_data, config=config, attempt=1, now=utcnow())
    services = Services(settings=settings,
                        http=client(client_cert=pki.client_cert, verify=pki.ca_bundle))

    webhook.send(context, services)

    [seen] = receiver.requests
    expected = {"text": "acme/web pushed: v1, 镜像", "n": ["v1", "镜像"]}
    assert json.loads(seen.body) == expected
    assert Webhook(config["secret"]).verify(seen.body, seen.headers) == expected
    assert seen.headers["webhook-id"] == context.delivery_id
    assert (("commonName", CLIENT_NAME),) in seen.peer_cert["subject"]
