"""The one HTTP helper every method sends through: policy, one deadline, no redirects, bounded
reads, and what a response means (delivered, try again, stop).

Each attempt has one total deadline (the send timeout) that covers resolving the host,
connecting, the TLS handshake, sending and reading the answer: a watchdog cuts the attempt's
sockets when it passes, so a receiver that drips one byte at a time, or a resolver that hangs,
costs one bounded attempt, counted as failed. Only the first EXCERPT_BYTES of an answer are
read, and a compressed answer is inflated only that far.

Error texts are written here, never copied from requests' exceptions, which quote the URL and
so any token inside it.
"""

from __future__ import annotations

import email.utils
import heapq
import ipaddress
import itertools
import json
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from notifier import __version__
from notifier.errors import (TIMEOUT_KIND, PermanentDeliveryError, ReceiverGone,
                             RetryableDeliveryError)
from notifier.netpolicy import (ForbiddenAddress, IPAddress, Network, Unresolvable, resolve,
                                worker_refusal)

EXCERPT_BYTES = 2048
RETRY_AFTER_STATUSES = frozenset({429, 503})
RESOLVER_THREADS = 4  # lookups at once per client; a hung resolver costs a thread until it returns
WATCHDOG_SLACK_S = 0.02  # how late past its deadline an attempt may be cut
INFLATED_ENCODINGS = {"gzip": 31, "x-gzip": 31, "deflate": 47}  # zlib wbits for each

Resolver = Callable[[str, int, tuple[Network, ...]], IPAddress]


@dataclass(frozen=True)
class HttpResult:
    status_code: int
    response_excerpt: str
    duration_ms: int


# --- one deadline per attempt -----------------------------------------------------------------

class Deadline:
    """One attempt's total time; when it passes, every socket the attempt uses is cut."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self.at = time.monotonic() + timeout_s
        self.expired = False
        self._finished = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.resolved: dict[tuple[str, int], IPAddress] = {}

    def remaining_s(self) -> float:
        return max(0.001, self.at - time.monotonic())

    def track(self, sock: socket.socket | None) -> None:
        """A socket this attempt uses: cut at the deadline (at once if it already passed)."""
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            cut_now = self.expired
        if cut_now:
            _cut(sock)

    def expire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _cut(sock)

    def finish(self) -> None:
        """The attempt is over: a late watchdog must not cut a socket another attempt reuses."""
        with self._lock:
            self._finished = True
            self._sockets.clear()

    def error(self, step: str) -> RetryableDeliveryError:
        return RetryableDeliveryError(
            TIMEOUT_KIND, f"no complete answer within {self.timeout_s:g} s ({step})")


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _cut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class Watchdog:
    """One thread that expires attempts whose deadline has passed.

    It is woken only when a deadline comes before every one it waits for (attempts share one
    timeout, so rarely), and it expires every deadline that has passed at each wake, sleeping
    up to WATCHDOG_SLACK_S past the first so that deadlines close together cost one wake."""

    def __init__(self):
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: Deadline) -> None:
        with self._changed:
            sooner = not self._heap or deadline.at < self._heap[0][0]
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="http-deadlines",
                                                daemon=True)
                self._thread.start()
            if sooner:
                self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._heap:
                    self._changed.wait()
                wait_s = self._heap[0][0] - time.monotonic()
                if wait_s > 0:
                    self._changed.wait(wait_s + WATCHDOG_SLACK_S)
                now = time.monotonic()
                passed = []
                while self._heap and self._heap[0][0] <= now:
                    passed.append(heapq.heappop(self._heap)[2])
            for deadline in passed:
                deadline.expire()


_attempt = threading.local()  # the running attempt's Deadline, for the connections it opens


def _current_deadline() -> Deadline | None:
    return getattr(_attempt, "deadline", None)


class _DeadlineConnection(HTTPConnection):
    """Hands its sockets to the running attempt's deadline: new ones and reused ones."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        deadline = _current_deadline()
        if deadline is not None:
            deadline.track(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        deadline = _current_deadline()
        if deadline is not None:
            deadline.track(self.sock)
        super().request(*args, **kwargs)


class _DeadlineHTTPSConnection(_DeadlineConnection, HTTPSConnection):
    pass


class _DeadlineHTTPPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineConnection


class _DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


class PolicyAdapter(HTTPAdapter):
    """Connects to the address the network policy checked, keeping Host, SNI and cert checks."""

    def __init__(self, allowed: tuple[Network, ...], *, https: bool,
                 resolver: Resolver = resolve):
        self._allowed = allowed
        self._https = https
        self._resolver = resolver
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _DeadlineHTTPPool,
                                                   "https": _DeadlineHTTPSPool}

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        hostname = host_params["host"]
        port = host_params["port"] or (443 if self._https else 80)
        request.headers = CaseInsensitiveDict(request.headers or {})
        host_header = f"[{hostname}]" if ":" in hostname else hostname
        if host_params["port"] is not None:
            host_header += f":{host_params['port']}"
        request.headers["Host"] = host_header
        if self._https:
            pool_kwargs["assert_hostname"] = hostname
            pool_kwargs["server_hostname"] = hostname
        deadline = _current_deadline()
        ip = deadline.resolved.get((hostname, port)) if deadline else None
        if ip is None:
            ip = self._resolver(hostname, port, self._allowed)
        host_params["host"] = f"[{ip}]" if ip.version == 6 else str(ip)
        return host_params, pool_kwargs


class HttpClient:
    """POSTs JSON under the network policy; raises DeliveryError subclasses on failure.

    ``resolver`` (host, port, allowed networks → checked address) is the network policy's
    lookup; tests inject a slow one.
    """

    def __init__(self, *, timeout_s: float, allowed: tuple[Network, ...], user_agent: str,
                 retry_after_max_s: float, client_cert: tuple[str, str] | None = None,
                 verify: bool | str = True, resolver: Resolver = resolve):
        self.timeout_s = timeout_s
        self.retry_after_max_s = retry_after_max_s
        self._allowed = allowed
        self._resolver = resolver
        self._lookups = ThreadPoolExecutor(RESOLVER_THREADS, thread_name_prefix="http-dns")
        self._watchdog = Watchdog()
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.mount("http://", PolicyAdapter(allowed, https=False, resolver=resolver))
        self.session.mount("https://", PolicyAdapter(allowed, https=True, resolver=resolver))
        self.session.headers["User-Agent"] = f"{user_agent}/{__version__}"
        self.session.headers["Accept-Encoding"] = "identity"
        self.client_cert = client_cert
        self.session.verify = verify

    def post_json(self, url: str, body: bytes, headers: dict[str, str] | None = None, *,
                  present_client_cert: bool = False) -> HttpResult:
        """POST ``body`` (already-serialised JSON) to ``url``; a 2xx answer returns.

        ``present_client_cert``: show our TLS client certificate (webhooks only), if configured.
        """
        check_url(url)
        started = time.monotonic()
        deadline = Deadline(self.timeout_s)
        self._watchdog.watch(deadline)
        _attempt.deadline = deadline
        try:
            self._resolve_within(url, deadline)
            status, response_headers, excerpt = self._exchange(
                url, body, headers, deadline, present_client_cert)
            if deadline.expired:  # cut mid-answer: what arrived may parse, but it is not whole
                raise deadline.error("reading the answer")
        finally:
            _attempt.deadline = None
            deadline.finish()
        duration_ms = int((time.monotonic() - started) * 1000)
        return self._classify(status, response_headers, excerpt, duration_ms)

    def _resolve_within(self, url: str, deadline: Deadline) -> None:
        """Resolve and check the host before the deadline (getaddrinfo has no timeout)."""
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        try:
            if self._resolver is resolve and _is_address(host):
                address = resolve(host, port, self._allowed)  # nothing to look up: no thread
            else:
                lookup = self._lookups.submit(self._resolver, host, port, self._allowed)
                try:
                    address = lookup.result(timeout=deadline.remaining_s())
                except FutureTimeout:
                    lookup.cancel()
                    raise deadline.error("resolving the host") from None
        except Unresolvable as exc:
            raise RetryableDeliveryError("dns", str(exc)) from None
        except ForbiddenAddress as exc:
            raise RetryableDeliveryError("forbidden_address",
                                         worker_refusal(exc, self._allowed)) from None
        deadline.resolved[(host, port)] = address

    def _exchange(self, url: str, body: bytes, headers: dict[str, str] | None,
                  deadline: Deadline, present_client_cert: bool
                  ) -> tuple[int, CaseInsensitiveDict, str]:
        """Send and read the status, headers and the answer's excerpt, within the deadline."""
        request = self._request(url, body, headers)
        try:
            # The adapter itself, not session.post: even with allow_redirects=False, requests
            # reads a redirect's whole answer (decompressed) to look at where it points.
            response = self.session.get_adapter(url).send(
                request, stream=True, timeout=deadline.remaining_s(), verify=self.session.verify,
                cert=self.client_cert if present_client_cert else None)
        except requests.RequestException as exc:
            raise _request_error(exc, deadline) from None
        try:
            return response.status_code, response.headers, _read_excerpt(response, deadline)
        finally:
            response.close()  # an answer not read to its end closes its connection

    def _request(self, url: str, body: bytes, headers: dict[str, str] | None
                 ) -> requests.PreparedRequest:
        """The POST as ``session.prepare_request`` would make it, without merging the session's
        cookies, hooks and settings on every attempt (a tenth of a webhook's CPU): the URL and
        the Authorization its user info gives are worked out once per URL (``_target``)."""
        request = requests.PreparedRequest()
        request.method = "POST"
        request.url, authorization = _target(url)
        request.headers = CaseInsensitiveDict(self.session.headers)
        request.headers["Content-Type"] = "application/json"
        if headers:
            request.headers.update(headers)
        if authorization:
            request.headers["Authorization"] = authorization
        request.headers["Content-Length"] = str(len(body))
        request.body = body
        return request

    def _classify(self, status: int, headers: CaseInsensitiveDict, excerpt: str,
                  duration_ms: int) -> HttpResult:
        if 200 <= status < 300:
            return HttpResult(status, excerpt, duration_ms)
        details = dict(status_code=status, response_excerpt=excerpt)
        if status == 410:
            raise ReceiverGone("gone", "receiver answered 410 Gone", **details)
        retry_after_s = None
        if status in RETRY_AFTER_STATUSES:
            retry_after_s = parse_retry_after(headers.get("Retry-After"))
            if retry_after_s is not None:
                retry_after_s = min(retry_after_s, self.retry_after_max_s)
        kind = "redirect" if 300 <= status < 400 else "http_status"
        raise RetryableDeliveryError(
            kind, f"receiver answered HTTP {status}", retry_after_s=retry_after_s, **details
        )


@lru_cache(maxsize=1024)
def _target(url: str) -> tuple[str, str | None]:
    """``url`` as requests sends it (IDNA host, quoted path) and the Basic Authorization
    header its user info gives (None without). Raises requests' error for a URL it refuses."""
    prepared = requests.PreparedRequest()
    prepared.prepare(method="POST", url=url, headers={})  # auth=None: taken from the URL
    return prepared.url, prepared.headers.get("Authorization")


def _request_error(exc: requests.RequestException, deadline: Deadline) -> RetryableDeliveryError:
    """What a failed request means, in our words (requests' own quote the URL)."""
    if deadline.expired or isinstance(exc, requests.Timeout):
        return deadline.error("connecting, sending or reading the answer")
    if isinstance(exc, requests.exceptions.SSLError):
        return RetryableDeliveryError("tls", "TLS handshake or certificate check failed")
    if isinstance(exc, requests.ConnectionError):
        return RetryableDeliveryError("connection", "could not connect to the receiver")
    return RetryableDeliveryError("request", f"request failed: {type(exc).__name__}")


def _read_excerpt(response: requests.Response, deadline: Deadline) -> str:
    """The first EXCERPT_BYTES of the answer, inflated no further than that, as text.

    A deadline that passes while reading fails the attempt; an answer that breaks off
    otherwise keeps what arrived.
    """
    try:
        data = response.raw.read(EXCERPT_BYTES, decode_content=False) or b""
        if len(data) == EXCERPT_BYTES:
            response.raw.read(1, decode_content=False)  # at its end, the connection is reused
    except (urllib3.exceptions.HTTPError, OSError):
        if deadline.expired:
            raise deadline.error("reading the answer") from None
        data = b""
    text = _inflate(data, response.headers.get("Content-Encoding", "")).decode("utf-8", "replace")
    return text.replace("\x00", "\N{REPLACEMENT CHARACTER}")  # PostgreSQL text holds no NUL


def _inflate(data: bytes, encoding: str) -> bytes:
    """``data`` decompressed to at most EXCERPT_BYTES; an unknown encoding is named instead."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding not in INFLATED_ENCODINGS:
        return f"({encoding}-encoded answer not shown)".encode()
    try:
        return zlib.decompressobj(INFLATED_ENCODINGS[encoding]).decompress(data, EXCERPT_BYTES)
    except zlib.error:
        return f"({encoding}-encoded answer that does not decompress)".encode()


def encode_body(data: Any) -> bytes:
    """Serialise once, compactly: these exact bytes are signed (webhooks) and sent."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def check_url(url: str) -> None:
    """Only http(s) URLs with a host are sent to."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PermanentDeliveryError("invalid_url", "URL must be http(s) with a host")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) in seconds from now; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]+", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())
