"""The HTTP helper against receivers that misbehave: one total deadline per attempt (resolving,
connecting, sending, reading), bounded reads, no decompression beyond the excerpt."""

from __future__ import annotations

import gzip
import threading
import time

import psutil
import pytest

from notifier.errors import RetryableDeliveryError
from notifier.http import EXCERPT_BYTES, HttpClient
from notifier.netpolicy import parse_networks, resolve
from tests.receivers import RawReceiver, Receiver, gzip_bomb_answer

TIMEOUT_S = 1.0
LOOPBACK = parse_networks(["127.0.0.0/8"])


def client(**kwargs) -> HttpClient:
    return HttpClient(timeout_s=TIMEOUT_S, allowed=LOOPBACK, user_agent="notifier",
                      retry_after_max_s=60, **kwargs)


def answer(status: int, body: bytes, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return (f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{head}"
            "Connection: close\r\n\r\n").encode() + body


@pytest.fixture
def raw_receivers():
    made: list[RawReceiver] = []

    def make(data: bytes, drip_s: float = 0.0) -> RawReceiver:
        made.append(RawReceiver(data, drip_s))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def timed_failure(http: HttpClient, url: str) -> tuple[RetryableDeliveryError, float]:
    started = time.monotonic()
    with pytest.raises(RetryableDeliveryError) as caught:
        http.post_json(url, b"{}")
    return caught.value, time.monotonic() - started


def test_a_receiver_dripping_its_body_fails_at_the_deadline(raw_receivers):
    """Each byte comes well within a socket timeout; the attempt as a whole does not."""
    receiver = raw_receivers(answer(200, b"x" * 100), drip_s=0.1)

    error, took_s = timed_failure(client(), receiver.url)

    assert error.kind == "timeout"
    assert str(error).startswith(f"no complete answer within {TIMEOUT_S:g} s")
    assert took_s < TIMEOUT_S + 2  # not the 10 s the drip would take


@pytest.mark.parametrize("drip_s", [0.1, 0.04])  # cut in the status line, in the headers
def test_a_receiver_dripping_its_head_fails_at_the_deadline(raw_receivers, drip_s):
    receiver = raw_receivers(answer(200, b"ok", "X-Padding: " + "p" * 40), drip_s=drip_s)

    error, took_s = timed_failure(client(), receiver.url)

    assert error.kind == "timeout" and took_s < TIMEOUT_S + 2


def test_a_resolver_that_hangs_fails_at_the_deadline():
    receiver = Receiver()
    release = threading.Event()

    def hanging(host, port, allowed):
        release.wait(30)
        return resolve(host, port, allowed)

    try:
        error, took_s = timed_failure(client(resolver=hanging), receiver.url)
    finally:
        release.set()
        receiver.close()
    assert error.kind == "timeout" and "resolving the host" in str(error)
    assert took_s < TIMEOUT_S + 2 and receiver.requests == []


def test_a_gzip_bomb_is_inflated_no_further_than_the_excerpt(raw_receivers):
    receiver = raw_receivers(gzip_bomb_answer(1 << 30))
    before = psutil.Process().memory_info().rss

    result = client().post_json(receiver.url, b"{}")

    assert result.status_code == 200
    assert result.response_excerpt == "\N{REPLACEMENT CHARACTER}" * EXCERPT_BYTES  # no NUL
    assert (psutil.Process().memory_info().rss - before) < 50 * 2**20


def test_a_gzip_bomb_behind_a_redirect_is_not_read_either(raw_receivers):
    """requests reads a redirect's whole answer to follow it; we never ask it to."""
    bomb = gzip_bomb_answer(1 << 30, status=302).replace(
        b"Content-Type", b"Location: http://127.0.0.1:9/\r\nContent-Type", 1)
    receiver = raw_receivers(bomb)
    before = psutil.Process().memory_info().rss

    error, _ = timed_failure(client(), receiver.url)

    assert (error.kind, error.status_code) == ("redirect", 302)
    assert (psutil.Process().memory_info().rss - before) < 50 * 2**20


def test_a_small_compressed_answer_is_shown_inflated(raw_receivers):
    receiver = raw_receivers(answer(200, gzip.compress(b"thanks"), "Content-Encoding: gzip"))

    assert client().post_json(receiver.url, b"{}").response_excerpt == "thanks"


def test_an_answer_in_an_unknown_encoding_is_named_not_shown(raw_receivers):
    receiver = raw_receivers(answer(500, b"\x01\x02", "Content-Encoding: br"))

    error, _ = timed_failure(client(), receiver.url)

    assert error.response_excerpt == "(br-encoded answer not shown)"


def test_a_long_answer_keeps_only_the_excerpt(raw_receivers):
    receiver = raw_receivers(answer(200, b"y" * (10 * EXCERPT_BYTES)))

    assert client().post_json(receiver.url, b"{}").response_excerpt == "y" * EXCERPT_BYTES


def test_we_ask_for_answers_uncompressed():
    receiver = Receiver()
    try:
        client().post_json(receiver.url, b"{}")
        [request] = receiver.wait_for(1)
    finally:
        receiver.close()
    assert request.headers["accept-encoding"] == "identity"


def test_attempts_after_a_deadline_work_on_the_same_client(raw_receivers):
    http = client()
    slow = raw_receivers(answer(200, b"x" * 50), drip_s=0.1)
    fast = Receiver()
    try:
        timed_failure(http, slow.url)
        assert http.post_json(fast.url, b"{}").status_code == 200
        time.sleep(TIMEOUT_S)  # the first attempt's watchdog entry has long fired by now
        assert http.post_json(fast.url, b"{}").status_code == 200
    finally:
        fast.close()


def test_a_fully_read_answer_leaves_its_connection_for_the_next_attempt():
    """Bounded reads must not cost keep-alive: three POSTs, one connection."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    peers: list[int] = []

    class KeepAlive(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            peers.append(self.client_address[1])
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        http = client()
        for _ in range(3):
            http.post_json(f"http://127.0.0.1:{server.server_port}/hook", b"{}")
    finally:
        server.shutdown()
        server.server_close()
    assert len(peers) == 3 and len(set(peers)) == 1
