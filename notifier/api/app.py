"""The FastAPI application: Quay's repository-notification calls and ours."""

from __future__ import annotations

from functools import cache

from fastapi import FastAPI, Request
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config import Settings, get_settings
from notifier import __version__
from notifier.api.errors import error_response, install_error_handlers
from notifier.api.routes import ROUTERS
from notifier.api.tokens import hash_token
from notifier.db import make_engine, make_session_factory
from notifier.logging_config import json_server_logs
from notifier.producer import Producer, client_app
from notifier.ui import install_ui


class BodyLimit:
    """Counts a request's body as it arrives, whatever its framing, and answers 413 at the limit.

    A pure ASGI middleware in front of everything else: the body is read (at most
    ``max_bytes`` of it) before authentication or parsing, then handed on unchanged. A request
    that announces both Content-Length and Transfer-Encoding is refused (request smuggling).
    """

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length, chunked = headers.get("content-length"), "transfer-encoding" in headers
        refusal = self._refusal(length, chunked)
        if refusal is None and (chunked or (length and int(length) > 0)):
            body, refusal = await self._read(receive)
            if refusal is None:
                receive = _replay(body, receive)
        if refusal is not None:
            status, message = refusal
            response = error_response(Request(scope), status, message)
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refusal(self, length: str | None, chunked: bool) -> tuple[int, str] | None:
        """What the headers alone refuse: both framings at once, a bad or too large length."""
        if length is not None and chunked:
            return 400, "A request must not carry both Content-Length and Transfer-Encoding"
        if length is not None and not (length.isascii() and length.isdigit()):
            return 400, "Content-Length must be a number of bytes"
        if length is not None and int(length) > self.max_bytes:
            return 413, self._too_large
        return None

    async def _read(self, receive: Receive) -> tuple[bytes, tuple[int, str] | None]:
        """The body, counted as it arrives; a refusal once it passes the limit."""
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"", (400, "The client went away before sending its whole body")
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                return b"", (413, self._too_large)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None

    @property
    def _too_large(self) -> str:
        return f"Request body larger than {self.max_bytes} bytes"


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the already-read body once, then whatever the client sends."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for ``settings`` (the environment's by default)."""
    settings = settings or get_settings()
    if settings.log_format == "json":
        json_server_logs()
    app = FastAPI(title="notifier", version=__version__,
                  description="Quay-compatible repository notifications, and their deliveries")
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url)
    app.state.factory = make_session_factory(app.state.engine)
    app.state.producer = cache(lambda: Producer(client_app(settings), settings))
    app.state.service_token_hashes = frozenset(
        hash_token(t.get_secret_value()) for t in settings.service_tokens)
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    install_ui(app)
    return app
