"""The chat methods (slack, flowdock, hipchat): their config checks and what a loopback receiver
gets from a send, byte for byte where the spec fixes it."""

from __future__ import annotations

import json
import socket
import uuid
from dataclasses import dataclass

import pytest

from config import load_settings
from notifier.errors import InvalidNotificationConfig, RetryableDeliveryError
from notifier.events import build_event_data, sample_data
from notifier.http import HttpClient, encode_body
from notifier.methods import CreateContext, DeliveryContext, Services, get_method
from notifier.methods.flowdock import FlowdockMethod, inbox_url
from notifier.methods.hipchat import HipchatMethod, notification_url
from notifier.methods.slack import SlackMethod
from notifier.models import utcnow
from notifier.netpolicy import parse_networks
from tests.receivers import Receiver

SLACK, FLOWDOCK, HIPCHAT = SlackMethod(), FlowdockMethod(), HipchatMethod()
LOOPBACK = parse_networks(["127.0.0.0/8"])
CONTEXT = CreateContext("acme/web", LOOPBACK)

SLACK_PATH = "/services/T0001/B0001/slacksecret0001"
FLOWDOCK_TOKEN = "flow/token?secret=0002"
HIPCHAT_TOKEN = "hip chat/token&secret=0003"
ROOM_ID = "4242"
SECRETS = ["slacksecret0001", "secret=0002", "secret%3D0002", "secret=0003", "secret%3D0003"]

REPOSITORY_URL = "https://registry.example.com/repository/acme/web"
BUILD_URL = f"{REPOSITORY_URL}/build/fake-build-id"
ALICE = {"entity_name": "alice"}


def tag_link(tag: str, html: bool) -> str:
    url = f"{REPOSITORY_URL}?tag={tag}&amp;tab=tags"
    return f'<a href="{url}">{tag}</a>' if html else f"<{url}|{tag}>"


@dataclass(frozen=True)
class Case:
    """One event as sent, and what each chat service must receive for it."""

    event: str
    data: dict
    summary: str
    homepage: str
    html: str
    mrkdwn: str


CASES = [
    Case("repo_push", {"updated_tags": ["latest", "foo"]},
         "Repository acme/web updated", REPOSITORY_URL,
         f'<b>alice</b> pushed image(s) to repository <a href="{REPOSITORY_URL}">acme/web</a>: '
         f'tags {tag_link("latest", True)}, {tag_link("foo", True)}',
         f"*alice* pushed image(s) to repository <{REPOSITORY_URL}|acme/web>: "
         f'tags {tag_link("latest", False)}, {tag_link("foo", False)}'),
    Case("build_failure", sample_data("build_failure"),
         "Build failure for repository acme/web [fake-bu]", BUILD_URL,
         f'<a href="{BUILD_URL}">Build fake-bu</a> failed for repository '
         f'<a href="{REPOSITORY_URL}">acme/web</a>, for change '
         '<code><a href="http://path/to/the/commit">42d4a62</a></code> to branch '
         "<b>somebranch</b> by <b>fakeauthor</b>"
         "<br>Error: <code>This is a fake error message</code>",
         f"<{BUILD_URL}|Build fake-bu> failed for repository <{REPOSITORY_URL}|acme/web>, for "
         "change <http://path/to/the/commit|42d4a62> to branch *somebranch* by *fakeauthor*\n"
         "Error: This is a fake error message"),
    Case("vulnerability_found",
         {"tags": ["latest", "prod"],
          "vulnerability": {"id": "CVE-2024-1234", "description": "overflow", "has_fix": True,
                            "link": "https://security.example/CVE-2024-1234", "priority": "High"}},
         "High vulnerability detected in repository acme/web in 2 tags", REPOSITORY_URL,
         '<b>High</b> vulnerability <a href="https://security.example/CVE-2024-1234">CVE-2024-1234'
         f'</a> detected in repository <a href="{REPOSITORY_URL}">acme/web</a> in tags '
         f'{tag_link("latest", True)}, {tag_link("prod", True)}',
         "*High* vulnerability <https://security.example/CVE-2024-1234|CVE-2024-1234> detected in "
         f"repository <{REPOSITORY_URL}|acme/web> in tags "
         f'{tag_link("latest", False)}, {tag_link("prod", False)}'),
]
CASE_IDS = [case.event for case in CASES]

# (event, data, slack colour, hipchat colour, hipchat notify): every level once.
LEVELS = [
    ("repo_push", {"updated_tags": ["v1"]}, "good", "purple", False),  # primary
    ("build_start", {"build_id": "b1"}, "#ffffff", "gray", False),  # info
    ("build_success", {"build_id": "b1"}, "good", "green", False),  # success
    ("build_failure", {"build_id": "b1"}, "danger", "red", True),  # error
    ("vulnerability_found", {"vulnerability": {"priority": "Critical"}}, "danger", "red", True),
    ("vulnerability_found", {"vulnerability": {"priority": "Medium"}}, "warning", "yellow", False),
    ("vulnerability_found", {"vulnerability": {"priority": "Low"}}, "#ffffff", "gray", False),
]
LEVEL_IDS = ["primary", "info", "success", "error", "critical", "medium", "low"]


# --- validate_config ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, cls", [("slack", SlackMethod), ("flowdock", FlowdockMethod),
                                       ("hipchat", HipchatMethod)])
def test_the_registry_names_the_chat_methods(name, cls):
    assert isinstance(get_method(name), cls)


@pytest.mark.parametrize("config", [{}, {"url": ""}, {"url": None}, {"url": "  "}, {"url": 42}])
def test_slack_without_a_url_is_refused(config):
    with pytest.raises(InvalidNotificationConfig, match="^Missing Slack Callback URL$"):
        SLACK.validate_config(config, CONTEXT)


NOT_HTTPS = "it must start with https://"
POLICY = "which the network policy refuses (NOTIFIER_ALLOWED_NETWORKS allows networks)"


@pytest.mark.parametrize(("url", "why"), [
    ("http://hooks.slack.example/services/T/B/X", NOT_HTTPS),  # Slack requires https
    ("ftp://hooks.slack.example/x", NOT_HTTPS), ("hooks.slack.example/services/T/B/X", NOT_HTTPS),
    ("https://", "it has no host"),
    ("https://[::1/x", "it is not a valid URL (check the host and port)"),
    ("https://169.254.169.254/latest/meta-data",
     f"169.254.169.254 is a cloud metadata address, {POLICY}"),
    ("https://10.0.0.1/services/x", f"10.0.0.1 is a private address, {POLICY}"),
    ("https://[::ffff:10.0.0.1]/x",
     f"::ffff:10.0.0.1 is 10.0.0.1 in IPv6 form (IPv4-mapped), a private address, {POLICY}"),
])
def test_slack_with_an_invalid_url_is_refused_saying_why(url, why):
    with pytest.raises(InvalidNotificationConfig) as caught:
        SLACK.validate_config({"url": url}, CONTEXT)

    assert str(caught.value) == f"Invalid Slack Callback URL: {why}"


def test_a_refused_slack_url_is_not_quoted():
    """A Slack URL is its own secret: the refusal names the address, never the URL."""
    with pytest.raises(InvalidNotificationConfig) as caught:
        SLACK.validate_config({"url": "http://hooks.slack.example/services/T/B/SECRET"}, CONTEXT)

    assert "SECRET" not in str(caught.value)


def test_slack_asks_the_network_policy_of_the_context():
    config = {"url": "https://127.0.0.1/services/T/B/X"}

    assert SLACK.validate_config(config, CONTEXT) == config
    with pytest.raises(InvalidNotificationConfig,
                       match=r"^Invalid Slack Callback URL: 127\.0\.0\.1 is a loopback address"):
        SLACK.validate_config(config, CreateContext("acme/web", ()))


def test_slack_keeps_a_valid_config():
    config = {"url": "https://hooks.slack.example/services/T0/B0/x"}
    assert SLACK.validate_config(config, CONTEXT) == config


@pytest.mark.parametrize("config", [{}, {"flow_api_token": ""}, {"flow_api_token": None},
                                    {"flow_api_token": " "}, {"flow_api_token": 42}])
def test_flowdock_without_a_token_is_refused(config):
    with pytest.raises(InvalidNotificationConfig, match="^Missing Flowdock API Token$"):
        FLOWDOCK.validate_config(config, CONTEXT)


def test_flowdock_keeps_a_valid_config():
    config = {"flow_api_token": FLOWDOCK_TOKEN}
    assert FLOWDOCK.validate_config(config, CONTEXT) == config


@pytest.mark.parametrize("config", [{}, {"room_id": ROOM_ID}, {"room_id": ROOM_ID,
                                                                "notification_token": ""},
                                    {"room_id": ROOM_ID, "notification_token": None}])
def test_hipchat_without_a_token_is_refused(config):
    with pytest.raises(InvalidNotificationConfig,
                       match="^Missing Hipchat Room Notification Token$"):
        HIPCHAT.validate_config(config, CONTEXT)


@pytest.mark.parametrize("room_id", [None, "", " 12", "12a", "-1", "1.5", "0x1f", "١٢",
                                     "²", 12, ["12"]])
def test_hipchat_without_a_room_id_of_digits_is_refused(room_id):
    config = {"notification_token": HIPCHAT_TOKEN, "room_id": room_id}
    with pytest.raises(InvalidNotificationConfig, match="^Missing Hipchat Room ID$"):
        HIPCHAT.validate_config(config, CONTEXT)


def test_hipchat_keeps_a_valid_config():
    config = {"notification_token": HIPCHAT_TOKEN, "room_id": ROOM_ID}
    assert HIPCHAT.validate_config(config, CONTEXT) == config


# --- send --------------------------------------------------------------------------------------

def services_for(api_url: str) -> Services:
    """Both chat API bases at ``api_url``; the HTTP helper allows loopback only."""
    settings = load_settings(flowdock_api_url=api_url, hipchat_api_url=api_url,
                             allowed_networks="127.0.0.0/8", slack_username="registry-bot",
                             mail_sender="notices@registry.example.com")
    http = HttpClient(timeout_s=5, allowed=parse_networks(settings.allowed_networks),
                      user_agent=settings.user_agent, retry_after_max_s=60)
    return Services(settings=settings, http=http)


def base_url(receiver: Receiver) -> str:
    return receiver.url.removesuffix("/hook")


def config_for(method_name: str, api_url: str) -> dict:
    """A config as validate_config would store it; Slack's points at the loopback receiver."""
    return {
        "slack": {"url": api_url + SLACK_PATH},
        "flowdock": {"flow_api_token": FLOWDOCK_TOKEN},
        "hipchat": {"room_id": ROOM_ID, "notification_token": HIPCHAT_TOKEN},
    }[method_name]


def delivery(event: str, data: dict, config: dict, event_config: dict | None = None):
    event_data = build_event_data("acme/web", event, data,
                                  server_hostname="registry.example.com", scheme="https")
    return DeliveryContext(
        delivery_id=str(uuid.uuid4()), event=event, repository="acme/web", event_data=event_data,
        config=config, attempt=1, now=utcnow(), performer=ALICE, event_config=event_config or {},
    )


@pytest.fixture(scope="module")
def module_receiver():
    """One receiver for the module: closing one takes half a second."""
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def receiver(module_receiver):
    """The module's receiver, with no requests recorded yet."""
    module_receiver.requests.clear()
    return module_receiver


@pytest.fixture
def services(receiver):
    return services_for(base_url(receiver))


def send(method, receiver, services, event, data, event_config=None):
    """Send one event through ``method`` and return what the receiver got."""
    config = config_for(method.name, base_url(receiver))
    result = method.send(delivery(event, data, config, event_config), services)
    [received] = receiver.wait_for(1)
    assert result.status_code == 200
    assert received.headers["content-type"] == "application/json"
    assert received.headers["user-agent"].startswith("notifier/")
    return received


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_slack_posts_the_summary_and_the_message_as_mrkdwn(receiver, services, case):
    received = send(SLACK, receiver, services, case.event, case.data)

    colour = {"repo_push": "good", "build_failure": "danger", "vulnerability_found": "warning"}
    assert received.path == SLACK_PATH
    assert json.loads(received.body) == {
        "text": case.summary,
        "username": "registry-bot",
        "attachments": [{"fallback": case.summary, "text": case.mrkdwn,
                         "color": colour[case.event], "mrkdwn_in": ["text"]}],
    }
    assert received.body == encode_body(json.loads(received.body))  # compact, serialised once


def test_slack_shows_producer_text_in_the_summary_literally(receiver, services):
    """No mention of everyone, no link disguised as something else, from a producer's text."""
    message = "<!channel> & <https://evil.example/|https://registry.example.com/login>"
    received = send(SLACK, receiver, services, "repo_mirror_sync_failed", {"message": message})

    body = json.loads(received.body)
    escaped = ("&lt;!channel&gt; &amp; "
               "&lt;https://evil.example/|https://registry.example.com/login&gt;")
    assert body["text"] == body["attachments"][0]["fallback"] \
        == f"Repository Mirror failed for {escaped}"
    assert "<!channel>" not in received.body.decode() and "<https://evil" not in body["text"]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_flowdock_posts_to_the_team_inbox_of_the_token(receiver, services, case):
    received = send(FLOWDOCK, receiver, services, case.event, case.data)

    assert received.path == "/v1/messages/team_inbox/flow%2Ftoken%3Fsecret%3D0002"
    assert json.loads(received.body) == {
        "source": "notifier",
        "from_address": "notices@registry.example.com",
        "subject": case.summary,
        "content": case.html,
        "from_name": "acme",
        "project": "acme web",
        "tags": [f"#{case.event}"],
        "link": case.homepage,
    }


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_hipchat_posts_a_room_notification(receiver, services, case):
    received = send(HIPCHAT, receiver, services, case.event, case.data)

    colour = {"repo_push": "purple", "build_failure": "red", "vulnerability_found": "yellow"}
    assert received.path == \
        "/v2/room/4242/notification?auth_token=hip%20chat%2Ftoken%26secret%3D0003"
    assert json.loads(received.body) == {
        "color": colour[case.event],
        "message": case.html,
        "notify": case.event == "build_failure",
        "message_format": "html",
    }


@pytest.mark.parametrize("event, data, slack_colour, hipchat_colour, notify", LEVELS,
                         ids=LEVEL_IDS)
def test_colours_follow_the_level(receiver, services, event, data, slack_colour, hipchat_colour,
                                  notify):
    slack_body = json.loads(send(SLACK, receiver, services, event, data).body)
    receiver.requests.clear()
    hipchat_body = json.loads(send(HIPCHAT, receiver, services, event, data).body)

    assert slack_body["attachments"][0]["color"] == slack_colour
    assert (hipchat_body["color"], hipchat_body["notify"]) == (hipchat_colour, notify)


def test_the_summary_counts_only_vulnerabilities_that_pass_the_level(receiver, services):
    data = {"tags": ["latest"], "vulnerabilities": [{"id": "CVE-1", "priority": "High"},
                                                     {"id": "CVE-2", "priority": "Low"}]}

    received = send(SLACK, receiver, services, "vulnerability_found", data, {"level": "High"})

    body = json.loads(received.body)
    assert body["text"] == "High vulnerability detected in repository acme/web in 1 tags"
    assert "CVE-1" in body["attachments"][0]["text"]
    assert "CVE-2" not in body["attachments"][0]["text"]


@pytest.mark.parametrize("api_url", ["https://chat.example", "https://chat.example/"])
def test_an_api_base_with_or_without_a_trailing_slash(api_url):
    # Checked on the URL: the loopback receiver (http.server) folds a leading "//" itself.
    assert inbox_url(api_url, "t") == "https://chat.example/v1/messages/team_inbox/t"
    assert notification_url(api_url, "7", "t") == \
        "https://chat.example/v2/room/7/notification?auth_token=t"


# --- failures never show the secret ------------------------------------------------------------

def failed_send(method, api_url: str) -> RetryableDeliveryError:
    services = services_for(api_url)
    context = delivery("repo_push", {"updated_tags": ["v1"]}, config_for(method.name, api_url))
    with pytest.raises(RetryableDeliveryError) as caught:
        method.send(context, services)
    return caught.value


def assert_no_secret(error: Exception) -> None:
    for text in (str(error), repr(error)):
        assert not any(secret in text for secret in SECRETS), text


@pytest.fixture(scope="module")
def failing_receiver():
    receiver = Receiver(statuses=[500])
    yield receiver
    receiver.close()


@pytest.mark.parametrize("method", [SLACK, FLOWDOCK, HIPCHAT], ids=lambda m: m.name)
def test_a_receiver_answering_500_is_retried_without_the_secret_in_the_error(failing_receiver,
                                                                            method):
    failing_receiver.requests.clear()

    error = failed_send(method, base_url(failing_receiver))

    assert len(failing_receiver.wait_for(1)) == 1
    assert error.status_code == 500
    assert str(error) == "receiver answered HTTP 500"
    assert_no_secret(error)


@pytest.mark.parametrize("method", [SLACK, FLOWDOCK, HIPCHAT], ids=lambda m: m.name)
def test_an_unreachable_receiver_is_retried_without_the_secret_in_the_error(method):
    with socket.socket() as probe:  # a port nobody listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    error = failed_send(method, f"http://127.0.0.1:{port}")

    assert error.kind == "connection"
    assert_no_secret(error)


@pytest.mark.parametrize(("method", "config", "secret"), [
    ("slack", {"url": "https://hooks.slack.com/services/T0/B0/XYZsecret1234"}, "XYZsecret1234"),
    ("flowdock", {"flow_api_token": "flowtoken9876abcd"}, "flowtoken9876abcd"),
    ("hipchat", {"room_id": "42", "notification_token": "hiptoken5555wxyz"}, "hiptoken5555wxyz"),
])
def test_secrets_are_masked_in_views(method, config, secret):
    masked = get_method(method).masked_config(config)

    assert secret not in json.dumps(masked)
    assert any(str(value).startswith("****") and str(value).endswith(secret[-4:])
               for value in masked.values())
