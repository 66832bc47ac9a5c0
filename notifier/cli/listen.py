"""`notifier listen`: a local receiver for trying notifications out and for debugging webhooks.

It prints each request it gets (event, webhook-id, a short body, and whether the Standard
Webhooks signature verified with the secret), then answers ``--status`` after ``--delay`` seconds.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import re
import signal
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import click

from notifier.cli import cli
from notifier.errors import NotifierError

DEFAULT_PORT = 8900
MAX_BODY_BYTES = 1_048_576
PREVIEW_CHARS = 200
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
# One entry of a webhook-signature header: a version, a comma, a base64 signature
SIGNATURE_ENTRY = re.compile(r"v\d+,[A-Za-z0-9+/]+={0,2}")
MALFORMED = "malformed webhook-signature header: expected space-separated 'v1,<base64>' entries"


@dataclass(frozen=True)
class Answer:
    """What the receiver answers: ``status`` after ``delay_s`` seconds."""

    status: int
    delay_s: float


@dataclass(frozen=True)
class Request:
    """One request as received, with what the receiver made of it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    signature: str  # verified, failed: <why>, missing
    seen: int  # how many requests carried this webhook-id, this one included

    @property
    def event(self) -> str | None:
        return self.headers.get("x-notifier-event")

    @property
    def webhook_id(self) -> str | None:
        return self.headers.get("webhook-id")


def check_signature(secret: str, body: bytes, headers: dict[str, str]) -> str:
    """``verified``, ``failed: <why>`` or ``missing`` (no Standard Webhooks headers)."""
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    if not any(name in headers for name in SIGNATURE_HEADERS):
        return "missing"
    # Checked here, not left to the library: its releases differ on such a header (1.3 calls it
    # "No matching signature found", earlier ones raised ValueError)
    entries = headers.get("webhook-signature", "").split()
    if entries and not any(SIGNATURE_ENTRY.fullmatch(entry) for entry in entries):
        return f"failed: {MALFORMED}"
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except WebhookVerificationError as exc:
        return f"failed: {exc}"
    except (ValueError, UnicodeDecodeError):  # a header or body the library cannot take apart
        return "failed: malformed webhook-signature header or body"
    return "verified"


def preview(body: bytes) -> str:
    """The body on one line, cut to PREVIEW_CHARS."""
    text = " ".join(body.decode("utf-8", "replace").split())
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS - 1] + "…"


def describe(request: Request, answer: Answer) -> str:
    """Two lines for people: what came, what it is answered; then the body."""
    when = datetime.now().strftime("%H:%M:%S")
    signature = "signature " + ("NOT VERIFIED: " + request.signature.removeprefix("failed: ")
                                if request.signature.startswith("failed") else request.signature)
    parts = [when, request.method, request.path, request.event or "-",
             f"webhook-id {request.webhook_id or '-'}", signature]
    if request.seen > 1:
        parts.append(f"(attempt {request.seen} of this webhook-id)")
    after = f" after {answer.delay_s:g} s" if answer.delay_s else ""
    parts.append(f"-> {answer.status}{after}")
    return "  ".join(parts) + "\n  " + (preview(request.body) or "(empty body)")


def as_json(request: Request, answer: Answer) -> str:
    """One JSON document on one line."""
    text = request.body.decode("utf-8", "replace")
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = text
    return json.dumps({"method": request.method, "path": request.path, "event": request.event,
                       "webhook_id": request.webhook_id, "signature": request.signature,
                       "attempt": request.seen, "status": answer.status,
                       "delay_s": answer.delay_s, "headers": request.headers, "body": body})


class Receiver:
    """Reads each request, prints it, answers as told. Requests are handled on threads."""

    def __init__(self, secret: str, answer: Answer, print_json: bool):
        self.secret = secret
        self.answer = answer
        self.print_json = print_json
        self._lock = threading.Lock()
        self._seen: Counter[str] = Counter()

    def receive(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        with self._lock:
            webhook_id = headers.get("webhook-id")
            if webhook_id:
                self._seen[webhook_id] += 1
            seen = self._seen[webhook_id] if webhook_id else 1
            request = Request(method, path, headers, body,
                              check_signature(self.secret, body, headers), seen)
            show = as_json if self.print_json else describe
            click.echo(show(request, self.answer))

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "notifier-listen"

            def handle_one(self) -> None:
                body = self._body()
                if body is None:
                    return
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver.receive(self.command, self.path, headers, body)
                time.sleep(receiver.answer.delay_s)
                self._reply(receiver.answer.status,
                            f"notifier listen answered {receiver.answer.status}\n")

            do_POST = do_PUT = do_PATCH = do_GET = do_DELETE = handle_one

            def _body(self) -> bytes | None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if length < 0 or length > MAX_BODY_BYTES:
                    self._reply(413 if length > 0 else 400, "bad or too large Content-Length\n")
                    self.close_connection = True
                    return None
                return self.rfile.read(length)

            def _reply(self, status: int, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:  # we print our own line per request
                pass

        return Handler


def bind(host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """A server on ``host:port``; a port in use or a host we cannot bind is one clear error."""
    server_class = ThreadingHTTPServer
    if ":" in host:
        server_class = type("Ipv6Server", (ThreadingHTTPServer,),
                            {"address_family": socket.AF_INET6})
    try:
        server = server_class((host, port), handler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise NotifierError(f"port {port} is already in use on {host}: choose another "
                                f"with --port (0 picks a free one)") from None
        raise NotifierError(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                            f"(check --host and --port)") from None
    server.daemon_threads = True
    return server


def url_host(host: str) -> str:
    """The host to put in a URL that reaches a server bound to ``host``."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def policy_note(host: str) -> list[str]:
    """Why the network policy refuses ``host``, and the one setting that lets the fleet reach
    it; nothing for a public address or a name (the policy checks what a name resolves to)."""
    from notifier.netpolicy import RefusedAddress, is_public

    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return []
    if is_public(ip):
        return []
    network = "127.0.0.0/8" if ip.version == 4 and ip.is_loopback else f"{ip}/{ip.max_prefixlen}"
    return [f"{RefusedAddress(ip)}; to let the fleet reach it, set in the environment of the "
            f"workers and of 'notifier notification add':",
            f"  NOTIFIER_ALLOWED_NETWORKS={network}    (for trying things out only)"]


def banner(host: str, port: int, secret: str, generated: bool, answer: Answer) -> str:
    """What to do with this receiver: its URL, the command that points a webhook at it, and
    the setting the fleet needs to reach it."""
    url = f"http://{host}:{port}/"
    after = f" after {answer.delay_s:g} s" if answer.delay_s else ""
    config = json.dumps({"url": url, "secret": secret})
    lines = [f"Listening on {url} (answering {answer.status}{after}; Ctrl-C stops)"]
    if generated:
        lines.append(f"No --secret given: signatures are checked with a new one, {secret}")
    lines += ["Point a webhook notification at it:",
              f"  notifier notification add NS/REPO --event repo_push --method webhook "
              f"--config '{config}'"]
    return "\n".join(lines + policy_note(host))


def _check_secret(_ctx, _param, value: str | None) -> str | None:
    from notifier.methods.webhook import is_valid_secret

    if value is not None and not is_valid_secret(value):
        raise click.BadParameter("must be 'whsec_' followed by base64 of 24 or more bytes "
                                 "(the notification's webhook secret)")
    return value


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; loopback keeps the receiver on this machine.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0 picks a free one).")
@click.option("--secret", callback=_check_secret,
              help="The notification's whsec_ secret, to verify signatures (a new one if none).")
@click.option("--status", default=200, show_default=True, type=click.IntRange(200, 599),
              help="HTTP status to answer every request with.")
@click.option("--delay", default=0.0, show_default=True, type=click.FloatRange(0, 300),
              help="Seconds to wait before answering.")
@click.option("--json", "print_json", is_flag=True,
              help="Print each request as one JSON document (and the banner on stderr).")
def listen(host: str, port: int, secret: str | None, status: int, delay: float,
           print_json: bool) -> None:
    """Receive webhooks locally: print each request and check its signature."""
    from notifier.methods.webhook import new_secret

    answer = Answer(status, delay)
    generated = secret is None
    secret = secret or new_secret()
    receiver = Receiver(secret, answer, print_json)
    server = bind(host, port, receiver.handler())
    signal.signal(signal.SIGTERM, _stop)
    try:  # from the banner on, Ctrl-C stops it cleanly (it can come as soon as it is read)
        click.echo(banner(url_host(host), server.server_address[1], secret, generated, answer),
                   err=print_json)
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    click.echo("stopped", err=print_json)


def _stop(*_args) -> None:
    raise KeyboardInterrupt
