"""Request bodies against a real uvicorn: counted as they arrive, for every framing, refused
with 413 at the limit before authentication or parsing; the API's memory stays flat."""

from __future__ import annotations

import json
import os
import socket
import time

import psutil
import pytest
import requests

from notifier.supervisor import ProcessGroup, api_command
from tests.fleet import free_port

LIMIT_BYTES = 1_048_576
ATTACK_BYTES = 300 * 1024 * 1024
CHUNK = b"x" * 65536
PATH = "/api/v1/repository/alice/app/notification/"
READY_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def api_server(tmp_path_factory):
    """A real uvicorn serving the API on SQLite; yields (base URL, its psutil.Process)."""
    workdir = tmp_path_factory.mktemp("body-limit")
    port = free_port()
    env = {**os.environ, "NOTIFIER_DATABASE_URL": f"sqlite:///{workdir / 'notifier.db'}",
           "NOTIFIER_BROKER_URL": f"filesystem://{workdir / 'broker'}",
           "NOTIFIER_API_MAX_BODY_BYTES": str(LIMIT_BYTES)}
    group = ProcessGroup(env=env, log_dir=workdir / "logs")
    process = group.start("api", api_command("127.0.0.1", port))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            requests.get(f"{base}/healthz", timeout=1).raise_for_status()
            break
        except requests.RequestException:
            if time.monotonic() > deadline or process.poll() is not None:
                group.stop()
                raise AssertionError((workdir / "logs" / "api.log").read_text())
            time.sleep(0.2)
    try:
        yield base, psutil.Process(process.pid)
    finally:
        group.stop()


def send_raw(base: str, head: str, body_chunks, limit_bytes: int = ATTACK_BYTES,
             timeout_s: float = 60) -> tuple[int, int]:
    """Send ``head`` then body chunks until the server answers (or ``limit_bytes`` went out);
    returns (status code, body bytes sent)."""
    host, port = base.removeprefix("http://").split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=timeout_s) as sock:
        sock.sendall(head.encode())
        sock.setblocking(False)
        answer = b""
        deadline = time.monotonic() + timeout_s
        for chunk in body_chunks:
            answer += _read_available(sock)
            if answer or sent >= limit_bytes or time.monotonic() > deadline:
                break
            try:
                _send_some(sock, chunk)
                sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.setblocking(True)
        while b"\r\n" not in answer and time.monotonic() < deadline:
            part = sock.recv(65536)
            if not part:
                break
            answer += part
    return int(answer.split(b" ", 2)[1]), sent


def _send_some(sock: socket.socket, data: bytes) -> None:
    """Send all of ``data`` on a non-blocking socket, waiting for room (bounded)."""
    view, deadline = memoryview(data), time.monotonic() + 30
    while view:
        try:
            view = view[sock.send(view):]
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise BrokenPipeError("the server stopped reading") from None
            time.sleep(0.001)


def _read_available(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except BlockingIOError:
        return b""


def chunked(total: int):
    """A chunked body of ``total`` bytes, chunk by chunk, then the last chunk."""
    for _ in range(total // len(CHUNK)):
        yield b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n"
    yield b"0\r\n\r\n"


def head(*headers: str) -> str:
    return f"POST {PATH} HTTP/1.1\r\nHost: localhost\r\n" + "".join(
        f"{h}\r\n" for h in headers) + "\r\n"


def test_a_300_mib_chunked_body_without_a_token_is_413_and_memory_stays_flat(api_server):
    base, process = api_server
    before = process.memory_info().rss

    status, sent = send_raw(base, head("Transfer-Encoding: chunked",
                                       "Content-Type: application/json"),
                            chunked(ATTACK_BYTES))

    grown_mib = (process.memory_info().rss - before) / 2**20
    assert status == 413  # not 401: the body is refused before anyone is authenticated
    assert sent < ATTACK_BYTES  # the server stopped taking it
    assert grown_mib < 30, f"API grew by {grown_mib:.0f} MiB"
    assert requests.get(f"{base}/healthz", timeout=5).status_code == 200


def test_a_small_content_length_with_a_long_chunked_body_is_refused(api_server):
    base, process = api_server
    before = process.memory_info().rss

    status, _ = send_raw(base, head("Content-Length: 10", "Transfer-Encoding: chunked"),
                         chunked(50 * 1024 * 1024))

    assert status == 400  # refused from its headers: two framings are a smuggling attempt
    assert (process.memory_info().rss - before) / 2**20 < 30


def test_an_announced_length_over_the_limit_is_413_without_reading_it(api_server):
    base, process = api_server
    before = process.memory_info().rss
    status, _ = send_raw(base, head(f"Content-Length: {ATTACK_BYTES}"),
                         (CHUNK for _ in range(ATTACK_BYTES // len(CHUNK))))

    assert status == 413
    assert (process.memory_info().rss - before) / 2**20 < 30


def test_a_bad_content_length_is_400(api_server):
    base, _ = api_server
    status, _ = send_raw(base, head("Content-Length: 1_0"), iter([b"{}"]))

    assert status == 400


def test_a_chunked_body_under_the_limit_reaches_the_api(api_server):
    """Counted, then handed on unchanged: without a token the API answers 401."""
    base, _ = api_server
    body = json.dumps({"event": "repo_push", "method": "webhook", "config": {}}).encode()
    response = requests.post(f"{base}{PATH}", data=iter([body[:10], body[10:]]), timeout=10,
                             headers={"Content-Type": "application/json"})

    assert response.status_code == 401
    assert response.json()["error_type"] == "invalid_token"
