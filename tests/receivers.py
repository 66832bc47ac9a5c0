"""Small HTTP receivers on 127.0.0.1 (port 0) that answer from a script and record requests."""

from __future__ import annotations

import functools
import json
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers each POST with the next scripted status (the last one repeats)."""

    statuses: list[int] = field(default_factory=lambda: [200])
    headers: dict[str, str] = field(default_factory=dict)
    hold: threading.Event | None = None  # when set, requests wait until it is set
    delay_s: float = 0.0  # each answer comes this late
    requests: list[Received] = field(default_factory=list)
    max_in_flight: int = 0  # the most requests it was answering at once

    def __post_init__(self):
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._in_flight = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._arrived:
                    receiver.requests.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    index = len(receiver.requests) - 1
                    receiver._in_flight += 1
                    receiver.max_in_flight = max(receiver.max_in_flight, receiver._in_flight)
                    receiver._arrived.notify_all()
                if receiver.hold is not None:
                    receiver.hold.wait(timeout=60)
                time.sleep(receiver.delay_s)
                with receiver._lock:  # before answering: a count never ahead of the sender's
                    receiver._in_flight -= 1
                status = receiver.statuses[min(index, len(receiver.statuses) - 1)]
                self.send_response(status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def wait_for(self, count: int, timeout_s: float = 20.0) -> list[Received]:
        """Wait until ``count`` requests arrived; returns them (fails the test on timeout)."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"receiver got {len(self.requests)} requests, expected {count} "
                        f"within {timeout_s:g} s")
                self._arrived.wait(left)
            return list(self.requests)

    def tags(self) -> set[str]:
        """The events that arrived, told apart by their first tag."""
        return {_first_tag(request) for request in self.requests}

    def assert_each_tag_once(self, tags: list[str]) -> None:
        """Every event (told apart by its first tag) arrived, and any repeat carried the same
        webhook-id, so the receiver can tell it is the same delivery."""
        webhook_ids: dict[str, set[str]] = {}
        for request in self.requests:
            webhook_ids.setdefault(_first_tag(request), set()).add(request.headers["webhook-id"])
        assert sorted(webhook_ids) == sorted(tags)
        assert all(len(ids) == 1 for ids in webhook_ids.values())

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


class RawReceiver:
    """A receiver that answers every request with ``answer`` (raw HTTP bytes), one byte every
    ``drip_s`` seconds when set: for receivers that misbehave below HTTP."""

    def __init__(self, answer: bytes, drip_s: float = 0.0):
        self.answer, self.drip_s = answer, drip_s
        self.requests = 0
        self._closed = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                _read_request(conn)
                self.requests += 1
                if not self.drip_s:
                    conn.sendall(self.answer)
                for byte in (self.answer if self.drip_s else b""):
                    if self._closed.wait(self.drip_s):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                pass  # the client gave up: what a dripping receiver is for

    def close(self) -> None:
        self._closed.set()
        self.sock.close()


def _first_tag(request: Received) -> str:
    return json.loads(request.body)["updated_tags"][0]


def _read_request(conn: socket.socket) -> None:
    """Read one request's head and its Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        part = conn.recv(65536)
        if not part:
            return
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        part = conn.recv(65536)
        if not part:
            return
        body += part


@functools.lru_cache(maxsize=4)
def gzip_bomb_answer(inflated_bytes: int = 1 << 30, status: int = 200) -> bytes:
    """An HTTP answer whose gzip body inflates to ``inflated_bytes`` of zeros (~1 MiB a GiB).

    Built from one compressed MiB repeated: a full flush resets the compressor, so every
    segment is the same bytes (compressing a GiB here would take half a minute).
    """
    block, count = bytes(1 << 20), inflated_bytes >> 20
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    body = (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + segment * count + packer.flush()
            + struct.pack("<II", crc, (count << 20) & 0xFFFFFFFF))
    return (f"HTTP/1.1 {status} OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
