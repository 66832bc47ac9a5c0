"""`notifier listen` as a subprocess: what it prints for each request, its signature check with
the Standard Webhooks library, the answer it gives (status, delay), and bad options refused in
one line. Requests come from notifier's own webhook signing and its HTTP helper, on loopback."""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import threading
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

import pytest
import requests

from notifier.errors import RetryableDeliveryError
from notifier.http import HttpClient, encode_body
from notifier.methods import DeliveryContext, Services
from notifier.methods.webhook import WebhookMethod, new_secret, sign
from notifier.netpolicy import parse_networks
from tests.cli_support import COMMAND, Cli, single_error_line
from tests.fleet import free_port

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
START_TIMEOUT_S = 60
BODY = {"repository": "acme/app", "updated_tags": ["latest"]}


class Listener:
    """A running `notifier listen`; its stdout and stderr are collected line by line."""

    def __init__(self, *args: str):
        self.process = subprocess.Popen([*COMMAND, "listen", "--port", "0", *args],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, bufsize=1)
        self.lines = {"stdout": [], "stderr": []}
        self._changed = threading.Condition()
        for name in self.lines:
            threading.Thread(target=self._collect, args=(name,), daemon=True).start()
        found = self.wait_for(r"Listening on (http://\S+)", stream=None)
        self.url = found[1]

    def _collect(self, name: str) -> None:
        for line in getattr(self.process, name):
            with self._changed:
                self.lines[name].append(line.rstrip("\n"))
                self._changed.notify_all()

    def text(self, stream: str | None = "stdout") -> str:
        names = [stream] if stream else list(self.lines)
        return "\n".join(line for name in names for line in self.lines[name])

    def wait_for(self, pattern: str, stream: str | None = "stdout",
                 timeout_s: float = START_TIMEOUT_S) -> re.Match:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not (found := re.search(pattern, self.text(stream))):
                left = deadline - time.monotonic()
                assert left > 0 and self.process.poll() is None, \
                    f"no {pattern!r} in:\n{self.text(None)}"
                self._changed.wait(min(left, 0.5))
        return found

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)


@pytest.fixture
def listen():
    started = []

    def start(*args: str) -> Listener:
        started.append(Listener(*args))
        return started[-1]

    yield start
    for listener in started:
        listener.stop()


def signed_post(url: str, secret: str = SECRET, *, msg_id: str = "msg_1",
                timestamp: int | None = None, body: dict | None = None) -> requests.Response:
    data = encode_body(BODY if body is None else body)
    timestamp = int(time.time()) if timestamp is None else timestamp
    return requests.post(url, data=data, timeout=30, headers={
        "Content-Type": "application/json", "X-Notifier-Event": "repo_push",
        "webhook-id": msg_id, "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, data)})


def webhook_send(url: str, secret: str) -> None:
    """What a delivery worker does: the webhook method through the HTTP helper."""
    http = HttpClient(timeout_s=10, allowed=parse_networks(["127.0.0.0/8"]), user_agent="notifier",
                      retry_after_max_s=60)
    context = DeliveryContext(delivery_id="7f0c0d1e-0000-4000-8000-000000000001",
                              event="repo_push", repository="acme/app", event_data=BODY,
                              config={"url": url, "secret": secret}, attempt=1,
                              now=datetime.now(timezone.utc))
    WebhookMethod().send(context, Services(settings=None, http=http))


# --- what it prints -------------------------------------------------------------------------------

def test_it_prints_the_url_the_command_and_the_one_setting(listen):
    listener = listen("--secret", SECRET)
    banner = listener.text()

    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", listener.url)
    assert (f"--method webhook --config '{json.dumps({'url': listener.url, 'secret': SECRET})}'"
            in banner)
    assert "127.0.0.1 is a loopback address, which the network policy refuses" in banner
    assert "  NOTIFIER_ALLOWED_NETWORKS=127.0.0.0/8    (for trying things out only)" in banner
    assert "No --secret given" not in banner


def test_a_webhook_sent_by_notifier_verifies(listen):
    listener = listen("--secret", SECRET)
    webhook_send(listener.url, SECRET)

    line = listener.wait_for(r"POST  /  repo_push  webhook-id (\S+)  signature (\S+)  -> 200")
    assert line.groups() == ("7f0c0d1e-0000-4000-8000-000000000001", "verified")
    listener.wait_for(re.escape('  {"repository":"acme/app","updated_tags":["latest"]}'))


def test_the_wrong_secret_does_not_verify(listen):
    listener = listen("--secret", SECRET)
    webhook_send(listener.url, new_secret())

    listener.wait_for(r"signature NOT VERIFIED: No matching signature found  -> 200")
    assert "signature verified" not in listener.text()


@pytest.mark.parametrize(("headers", "says"), [
    ({}, "signature missing"),
    ({"webhook-id": "m", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"},
     "signature NOT VERIFIED: Message timestamp too old"),
    ({"webhook-id": "m", "webhook-timestamp": "x", "webhook-signature": "v1,AAAA"},
     "signature NOT VERIFIED: Invalid Signature Headers"),
    ({"webhook-id": "m", "webhook-timestamp": "now", "webhook-signature": "no comma here"},
     "signature NOT VERIFIED: malformed webhook-signature header: expected space-separated"
     " 'v1,<base64>' entries"),
])
def test_a_request_without_a_good_signature_says_so(listen, headers, says):
    if headers.get("webhook-timestamp") == "now":  # collection may be long before the test
        headers = {**headers, "webhook-timestamp": str(int(time.time()))}
    listener = listen("--secret", SECRET)
    assert requests.post(listener.url, data=b"{}", headers=headers, timeout=30).status_code == 200

    listener.wait_for(re.escape(says))


def test_a_retry_is_shown_as_the_next_attempt_of_its_webhook_id(listen):
    listener = listen("--secret", SECRET)
    signed_post(listener.url, msg_id="msg_retry")
    signed_post(listener.url, msg_id="msg_retry")

    listener.wait_for(r"webhook-id msg_retry  signature verified  "
                      r"\(attempt 2 of this webhook-id\)  -> 200")


def test_without_a_secret_it_makes_one_and_checks_with_it(listen):
    listener = listen()
    secret = listener.wait_for(r"No --secret given: signatures are checked with a new one, "
                               r"(whsec_\S+)")[1]
    assert f'"secret": "{secret}"' in listener.text()

    signed_post(listener.url, secret)
    listener.wait_for(r"signature verified")


def test_json_prints_one_document_per_request_and_the_banner_on_stderr(listen):
    listener = listen("--secret", SECRET, "--json", "--status", "202")
    assert "Listening on" in listener.text("stderr")
    signed_post(listener.url, msg_id="msg_json")

    line = listener.wait_for(r"\{.*\}")[0]
    document = json.loads(line)
    assert {key: document[key] for key in ("method", "path", "event", "webhook_id", "signature",
                                           "attempt", "status", "body")} == {
        "method": "POST", "path": "/", "event": "repo_push", "webhook_id": "msg_json",
        "signature": "verified", "attempt": 1, "status": 202, "body": BODY}
    assert listener.text() == line  # nothing else on stdout


def test_a_long_body_is_cut_on_one_line(listen):
    listener = listen("--secret", SECRET)
    signed_post(listener.url, body={"text": "line\n" * 500})

    body_line = listener.wait_for(r"\n  (\{.*)")[1]
    assert len(body_line) == 200 and body_line.endswith("…")


# --- what it answers ------------------------------------------------------------------------------

def test_status_and_delay_are_honoured(listen):
    listener = listen("--secret", SECRET, "--status", "503", "--delay", "1.5")
    assert "(answering 503 after 1.5 s; Ctrl-C stops)" in listener.text()

    started = time.monotonic()
    response = signed_post(listener.url)

    assert time.monotonic() - started >= 1.5
    assert response.status_code == 503
    assert response.text == "notifier listen answered 503\n"
    listener.wait_for(r"signature verified  -> 503 after 1.5 s")


def test_a_500_is_a_failed_attempt_for_notifier(listen):
    listener = listen("--secret", SECRET, "--status", "500")

    with pytest.raises(RetryableDeliveryError) as caught:
        webhook_send(listener.url, SECRET)

    assert (caught.value.kind, caught.value.status_code) == ("http_status", 500)
    assert caught.value.response_excerpt == "notifier listen answered 500\n"


def test_a_body_over_the_limit_is_refused_unread(listen):
    listener = listen("--secret", SECRET)
    connection = http.client.HTTPConnection(urlsplit(listener.url).netloc, timeout=30)
    connection.putrequest("POST", "/")
    connection.putheader("Content-Length", str(2 * 1024 * 1024))
    connection.endheaders(b"x")

    assert connection.getresponse().status == 413
    connection.close()
    assert "POST" not in listener.text()


def test_ctrl_c_stops_it_cleanly(listen):
    listener = listen("--secret", SECRET)

    assert listener.stop() == 0
    assert listener.text().endswith("stopped")


# --- bad options ----------------------------------------------------------------------------------

@pytest.fixture
def cli(tmp_path) -> Cli:
    return Cli(tmp_path)


@pytest.mark.parametrize(("args", "says"), [
    (["--port", "70000"], "error: Invalid value for '--port': 70000 is not in the range"),
    (["--port", "http"], "error: Invalid value for '--port': 'http' is not a valid integer"),
    (["--status", "99"], "error: Invalid value for '--status': 99 is not in the range"),
    (["--status", "600"], "error: Invalid value for '--status': 600 is not in the range"),
    (["--delay", "-1"], "error: Invalid value for '--delay': -1.0 is not in the range"),
    (["--delay", "soon"], "error: Invalid value for '--delay': 'soon' is not a valid float"),
    (["--secret", "s3cret"], "error: Invalid value for '--secret': must be 'whsec_' followed by "
                             "base64 of 24 or more bytes (the notification's webhook secret)"),
    (["--host", "192.0.2.1"], "error: cannot listen on 192.0.2.1:8900: Cannot assign "
                           "requested address (check --host and --port)"),
    (["--colour"], "error: No such option"),
])
def test_a_bad_option_is_one_error_line(cli, args, says):
    """One line naming the option (click words its own messages; ours are given whole)."""
    assert single_error_line(cli.run("listen", *args)).startswith(says)


def test_a_port_in_use_is_one_error_line(cli):
    port = free_port()
    with subprocess.Popen([*COMMAND, "listen", "--port", str(port)], stdout=subprocess.PIPE,
                          text=True) as first:
        try:
            assert "Listening on" in first.stdout.readline()
            result = cli.run("listen", "--port", str(port))
        finally:
            first.send_signal(signal.SIGINT)
            first.wait(timeout=30)

    assert single_error_line(result) == (
        f"error: port {port} is already in use on 127.0.0.1: choose another with --port "
        f"(0 picks a free one)")
