"""The one HTTP helper: what each answer means, timeouts, redirects, Retry-After, no secrets."""

from __future__ import annotations

import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from notifier import __version__
from notifier.errors import (
    DeliveryError,
    PermanentDeliveryError,
    ReceiverGone,
    RetryableDeliveryError,
)
from notifier.http import HttpClient, HttpResult, parse_retry_after
from notifier.netpolicy import parse_networks
from tests.receivers import Receiver

RETRY_AFTER_MAX_S = 600
SECRETS = ("hunter2", "SECRET")


@pytest.fixture
def receivers():
    """Makes loopback receivers; closes them all at the end."""
    made: list[Receiver] = []

    def make(*statuses: int, headers: dict[str, str] | None = None,
             hold: threading.Event | None = None) -> Receiver:
        made.append(Receiver(statuses=list(statuses or [200]), headers=headers or {},
                             hold=hold))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def http_client(timeout_s: float = 5) -> HttpClient:
    return HttpClient(timeout_s=timeout_s, allowed=parse_networks(["127.0.0.0/8"]),
                      user_agent="notifier", retry_after_max_s=RETRY_AFTER_MAX_S)


def failure(url: str, *, timeout_s: float = 5) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        http_client(timeout_s).post_json(url, b'{"a":1}')
    return caught.value


def with_secrets(url: str) -> str:
    """The same URL with credentials and a token in it."""
    return url.replace("http://", "http://alice:hunter2@") + "?token=SECRET"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_no_secrets(error: Exception) -> None:
    for text in (str(error), repr(error)):
        assert not any(secret in text for secret in SECRETS), text
    assert error.__suppress_context__  # a traceback will not show requests' own text


# --- answers --------------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [200, 202])
def test_a_2xx_answer_is_a_result(receivers, status):
    receiver = receivers(status)

    result = http_client().post_json(receiver.url, b'{"a":1}', {"X-Extra": "yes"})

    assert isinstance(result, HttpResult)
    assert (result.status_code, result.response_excerpt) == (status, "ok")
    assert result.duration_ms >= 0
    [received] = receiver.wait_for(1)
    assert received.body == b'{"a":1}'
    assert received.headers["x-extra"] == "yes"


def test_request_headers(receivers):
    receiver = receivers(200)

    http_client().post_json(receiver.url, b"{}")

    headers = receiver.wait_for(1)[0].headers
    assert headers["content-type"] == "application/json"
    assert "notifier/" in headers["user-agent"]
    assert headers["user-agent"] == f"notifier/{__version__}"


def test_user_info_in_the_url_is_sent_as_basic_authorization(receivers):
    receiver = receivers(200)
    url = receiver.url.replace("http://", "http://alice:p%40ss@")
    client = http_client()

    client.post_json(url, b"{}")
    client.post_json(url, b"{}")  # the second from what the first worked out

    for received in receiver.wait_for(2):
        assert received.headers["authorization"] == "Basic YWxpY2U6cEBzcw=="  # alice:p@ss
        assert received.path == "/hook"


def test_a_cookie_a_receiver_sets_is_not_sent_back(receivers):
    receiver = receivers(200, headers={"Set-Cookie": "session=abc; Path=/"})
    client = http_client()

    client.post_json(receiver.url, b"{}")
    client.post_json(receiver.url, b"{}")

    assert all("cookie" not in r.headers for r in receiver.wait_for(2))


def test_every_attempt_carries_its_own_headers_and_length(receivers):
    receiver = receivers(200)
    client = http_client()

    client.post_json(receiver.url, b'{"a":1}', {"webhook-id": "one"})
    client.post_json(receiver.url, b"{}", {"webhook-id": "two"})

    first, second = receiver.wait_for(2)
    assert (first.headers["webhook-id"], first.headers["content-length"]) == ("one", "7")
    assert (second.headers["webhook-id"], second.headers["content-length"]) == ("two", "2")
    assert first.headers["accept-encoding"] == "identity"


def test_a_host_name_is_kept_in_the_host_header(receivers):
    receiver = receivers(200)
    port = receiver.server.server_port

    http_client().post_json(f"http://localhost:{port}/hook", b"{}")

    assert receiver.wait_for(1)[0].headers["host"] == f"localhost:{port}"


@pytest.mark.parametrize("status", [500, 404, 400])
def test_an_error_status_is_a_retryable_failure(receivers, status):
    error = failure(receivers(status).url)

    assert type(error) is RetryableDeliveryError
    assert (error.kind, error.status_code, error.response_excerpt) == ("http_status", status, "ok")
    assert str(error) == f"receiver answered HTTP {status}"


def test_410_means_the_receiver_is_gone(receivers):
    error = failure(receivers(410).url)

    assert isinstance(error, ReceiverGone) and isinstance(error, PermanentDeliveryError)
    assert (error.kind, error.status_code) == ("gone", 410)


REDIRECTS = [301, 302, 303, 307, 308]


@pytest.mark.parametrize("status", REDIRECTS)
def test_a_redirect_is_not_followed(receivers, status):
    target = receivers(200)
    receiver = receivers(status, headers={"Location": target.url})

    error = failure(receiver.url)

    assert type(error) is RetryableDeliveryError
    assert len(receiver.wait_for(1)) == 1
    assert target.requests == []


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_with_a_location_is_a_failed_attempt_with_its_status(receivers, status):
    receiver = receivers(status, headers={"Location": "http://127.0.0.1:9/elsewhere"})

    error = failure(receiver.url)

    assert (error.kind, error.status_code, error.response_excerpt) == ("redirect", status, "ok")


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_without_a_location_is_a_failed_attempt_with_its_status(receivers, status):
    error = failure(receivers(status).url)

    assert type(error) is RetryableDeliveryError
    assert (error.kind, error.status_code, error.response_excerpt) == ("redirect", status, "ok")


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/hook", "http://", "http:///path", "not a url"])
def test_a_url_that_is_not_http_with_a_host_is_a_permanent_failure(url):
    error = failure(url)

    assert isinstance(error, PermanentDeliveryError)
    assert error.kind == "invalid_url"


# --- Retry-After ----------------------------------------------------------------------------------

def http_date(offset_s: float) -> str:
    return format_datetime(datetime.now(timezone.utc) + timedelta(seconds=offset_s), usegmt=True)


@pytest.mark.parametrize(
    ("status", "seconds", "expected_s"),
    [
        (429, "120", 120),
        (503, "0", 0),
        (503, "86400", RETRY_AFTER_MAX_S),  # capped
    ],
)
def test_retry_after_in_seconds(receivers, status, seconds, expected_s):
    error = failure(receivers(status, headers={"Retry-After": seconds}).url)

    assert (error.kind, error.status_code) == ("http_status", status)
    assert error.retry_after_s == expected_s


@pytest.mark.parametrize(
    ("status", "offset_s", "expected_s"),
    [
        (429, 90, 90),
        (503, 7200, RETRY_AFTER_MAX_S),  # capped
        (429, -300, 0),  # a date in the past: now
    ],
)
def test_retry_after_as_an_http_date(receivers, status, offset_s, expected_s):
    error = failure(receivers(status, headers={"Retry-After": http_date(offset_s)}).url)

    assert error.retry_after_s == pytest.approx(expected_s, abs=3)


@pytest.mark.parametrize(
    ("status", "header"),
    [
        (429, "soon"),
        (503, "1.5"),
        (429, "-5"),
        (500, "30"),  # honoured on 429 and 503 only
        (502, "30"),
        (429, "\u00b2"),
    ],
)
def test_a_retry_after_that_does_not_apply_is_ignored(receivers, status, header):
    error = failure(receivers(status, headers={"Retry-After": header}).url)

    assert isinstance(error, RetryableDeliveryError)
    assert error.status_code == status
    assert error.retry_after_s is None


NOW = datetime(2015, 10, 21, 7, 27, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 60.0),
        ("Wed, 21 Oct 2015 07:28:00 -0000", 60.0),  # a date without a zone is UTC
        ("Wed, 21 Oct 2015 09:28:00 +0200", 60.0),
        ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),  # in the past
        ("Wed, 32 Oct 2015 07:28:00 GMT", None),
        ("\u00b2", None),
    ],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, now=NOW) == expected


# --- timeouts and network errors, without secrets ---------------------------------------------

@pytest.mark.parametrize("secret_url", [False, True])
def test_a_receiver_that_holds_on_times_out(receivers, secret_url):
    receiver = receivers(200, hold=threading.Event())
    url = with_secrets(receiver.url) if secret_url else receiver.url

    started = time.monotonic()
    error = failure(url, timeout_s=0.5)

    assert time.monotonic() - started < 5
    assert type(error) is RetryableDeliveryError
    assert (error.kind, error.status_code) == ("timeout", None)
    assert str(error).startswith("no complete answer within 0.5 s")
    assert_no_secrets(error)
    receiver.wait_for(1)


@pytest.mark.parametrize("secret_url", [False, True])
def test_a_closed_port_is_a_connection_error(secret_url):
    url = f"http://127.0.0.1:{closed_port()}/hook"
    url = with_secrets(url) if secret_url else url

    error = failure(url)

    assert type(error) is RetryableDeliveryError
    assert (error.kind, error.status_code) == ("connection", None)
    assert_no_secrets(error)
