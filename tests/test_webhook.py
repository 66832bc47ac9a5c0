"""The webhook method: its config check and a signed send that Standard Webhooks verifies."""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import uuid
from datetime import timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from notifier.errors import InvalidNotificationConfig, RetryableDeliveryError
from notifier.events import build_event_data
from notifier.methods import CreateContext, DeliveryContext, get_method
from notifier.methods.webhook import WebhookMethod
from notifier.models import utcnow
from notifier.netpolicy import parse_networks
from tests.receivers import Receiver

WEBHOOK = WebhookMethod()
# The receivers of these tests listen on loopback, which the policy allows here; nothing else.
CONTEXT = CreateContext("acme/web", parse_networks(["127.0.0.0/8"]))


def secret_of(size: int) -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(size)).decode()


def secret_bytes(secret: str) -> bytes:
    assert secret.startswith("whsec_")
    return base64.b64decode(secret.removeprefix("whsec_"), validate=True)


# --- validate_config ---------------------------------------------------------------------------

def test_the_registry_names_the_webhook_method():
    assert isinstance(get_method("webhook"), WebhookMethod)


@pytest.mark.parametrize("config", [{}, {"url": ""}, {"url": None}, {"secret": secret_of(24)}])
def test_a_missing_url_is_refused(config):
    with pytest.raises(InvalidNotificationConfig, match="^Missing webhook URL$"):
        WEBHOOK.validate_config(config, CONTEXT)


NOT_HTTP = "it must start with http:// or https://"


@pytest.mark.parametrize(
    ("url", "why"),
    [("ftp://example.com/hook", NOT_HTTP), ("file:///etc/passwd", NOT_HTTP),
     ("example.com/hook", NOT_HTTP), ("javascript:alert(1)", NOT_HTTP),
     ("http://", "it has no host"), ("https:///path", "it has no host"),
     ("http://[::1/hook", "it is not a valid URL (check the host and port)"),
     ("http://example.com:99999/", "it is not a valid URL (check the host and port)"),
     (["http://example.com/"], "it must be text")],
)
def test_a_url_that_is_not_http_with_a_host_is_refused_saying_why(url, why):
    with pytest.raises(InvalidNotificationConfig) as caught:
        WEBHOOK.validate_config({"url": url}, CONTEXT)

    assert str(caught.value) == f"Invalid webhook URL: {why}"


POLICY = "which the network policy refuses (NOTIFIER_ALLOWED_NETWORKS allows networks)"


@pytest.mark.parametrize(("url", "why"), [
    ("http://127.0.0.1:8900/", "127.0.0.1 is a loopback address"),
    ("http://localhost/", "localhost resolves to 127.0.0.1, a loopback address"),
    ("http://10.0.0.1/", "10.0.0.1 is a private address"),
    ("http://192.168.0.9/", "192.168.0.9 is a private address"),
    ("http://169.254.10.1/", "169.254.10.1 is a link-local address"),
    ("http://[fe80::1]/", "fe80::1 is a link-local address"),
    ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a cloud metadata address"),
    ("http://[::ffff:127.0.0.1]/",
     "::ffff:127.0.0.1 is 127.0.0.1 in IPv6 form (IPv4-mapped), a loopback address"),
    ("http://[::ffff:169.254.169.254]/",
     "::ffff:169.254.169.254 is 169.254.169.254 in IPv6 form (IPv4-mapped), "
     "a cloud metadata address"),
])
def test_a_url_the_network_policy_forbids_is_refused_saying_why(url, why):
    with pytest.raises(InvalidNotificationConfig) as caught:
        WEBHOOK.validate_config({"url": url}, CreateContext("acme/web", ()))

    assert str(caught.value) == f"Invalid webhook URL: {why}, {POLICY}"


def test_a_secret_is_generated_when_none_is_given():
    first = WEBHOOK.validate_config({"url": "https://hooks.example.com/in"}, CONTEXT)
    second = WEBHOOK.validate_config({"url": "https://hooks.example.com/in"}, CONTEXT)

    assert first["url"] == "https://hooks.example.com/in"
    assert first["secret"].startswith("whsec_")
    assert len(secret_bytes(first["secret"])) >= 24
    assert first["secret"] != second["secret"]


@pytest.mark.parametrize("secret", [secret_of(24), secret_of(32),
                                    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
def test_a_valid_secret_is_kept(secret):
    config = {"url": "https://hooks.example.com/in", "secret": secret}
    assert WEBHOOK.validate_config(config, CONTEXT) == config


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "hunter2",
        "whsec_",
        "whsec_short",
        secret_of(16),  # fewer than 24 bytes
        "WHSEC_" + base64.b64encode(bytes(24)).decode(),
        "whsec_" + "!" * 40,
        12345,
        "whsec_" + "A" * 33,  # base64 that does not decode
    ],
)
def test_an_invalid_secret_is_refused(secret):
    with pytest.raises(InvalidNotificationConfig, match="Invalid webhook secret"):
        WEBHOOK.validate_config({"url": "https://hooks.example.com/in", "secret": secret}, CONTEXT)


# --- send --------------------------------------------------------------------------------------

def delivery(url: str, data: dict | None = None) -> DeliveryContext:
    event_data = build_event_data("acme/web", "repo_push", data or {"updated_tags": ["v1"]},
                                  server_hostname="registry.example.com", scheme="https")
    return DeliveryContext(
        delivery_id=str(uuid.uuid4()), event="repo_push", repository="acme/web",
        event_data=event_data, config=WEBHOOK.validate_config({"url": url}, CONTEXT), attempt=1,
        now=utcnow(),
    )


@pytest.mark.parametrize("data", [{"updated_tags": ["v1", "latest"]},
                                  {"updated_tags": ["tag-ü", "镜像"], "note": "<b>&\"'"}])
def test_the_body_is_the_event_data_and_the_signature_verifies(receiver, loopback_services, data):
    context = delivery(receiver.url, data)

    result = WEBHOOK.send(context, loopback_services)

    [received] = receiver.wait_for(1)
    assert result.status_code == 200
    assert json.loads(received.body) == context.event_data
    assert Webhook(context.config["secret"]).verify(received.body, received.headers) \
        == context.event_data


def test_the_headers(receiver, loopback_services):
    context = delivery(receiver.url)

    WEBHOOK.send(context, loopback_services)

    headers = receiver.wait_for(1)[0].headers
    assert headers["webhook-id"] == context.delivery_id
    assert headers["webhook-timestamp"] == str(int(context.now.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["x-notifier-event"] == "repo_push"
    assert headers["content-type"] == "application/json"


def test_another_secret_does_not_verify(receiver, loopback_services):
    WEBHOOK.send(delivery(receiver.url), loopback_services)

    received = receiver.wait_for(1)[0]
    with pytest.raises(WebhookVerificationError):
        Webhook(secret_of(24)).verify(received.body, received.headers)


def test_every_attempt_of_a_delivery_has_the_same_webhook_id(receiver, loopback_services):
    first = delivery(receiver.url)
    retry = dataclasses.replace(first, attempt=2, now=first.now + timedelta(seconds=5))

    WEBHOOK.send(first, loopback_services)
    WEBHOOK.send(retry, loopback_services)

    received = receiver.wait_for(2)
    assert [r.headers["webhook-id"] for r in received] == [first.delivery_id] * 2
    assert received[0].headers["webhook-timestamp"] != received[1].headers["webhook-timestamp"]
    for request in received:
        Webhook(first.config["secret"]).verify(request.body, request.headers)


def test_a_failing_receiver_fails_the_send(loopback_services):
    receiver = Receiver(statuses=[503])
    try:
        with pytest.raises(RetryableDeliveryError) as caught:
            WEBHOOK.send(delivery(receiver.url), loopback_services)
    finally:
        receiver.close()

    assert caught.value.status_code == 503


def test_the_view_masks_the_secret_and_the_urls_credentials():
    config = WEBHOOK.validate_config(
        {"url": "https://bob:hunter2pass@hooks.example.com/in?token=abcdef123456789"}, CONTEXT)

    masked = WEBHOOK.masked_config(config)

    assert masked["url"] == "https://bob:****@hooks.example.com/in?token=****6789"
    assert masked["secret"] == "****" + config["secret"][-4:]
    assert "hunter2pass" not in json.dumps(masked) and config["secret"] not in json.dumps(masked)
