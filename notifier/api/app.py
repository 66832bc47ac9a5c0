"""The FastAPI application: Quay's repository-notification calls and ours."""

from __future__ import annotations

from functools import cache

from fastapi import FastAPI, Request
from starlette.middleware.base import BaseHTTPMiddleware

from config import Settings, get_settings
from notifier import __version__
from notifier.api.errors import error_response, install_error_handlers
from notifier.api.routes import ROUTERS
from notifier.api.tokens import hash_token
from notifier.db import make_engine, make_session_factory
from notifier.logging_config import json_server_logs
from notifier.producer import Producer, client_app
from notifier.ui import install_ui


class BodyLimit(BaseHTTPMiddleware):
    """413 for a body longer than the limit, announced or streamed."""

    def __init__(self, app, max_bytes: int):
        super().__init__(app)
        self.max_bytes = max_bytes

    async def dispatch(self, request: Request, call_next):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > self.max_bytes:
            return error_response(request, 413, f"Request body larger than {self.max_bytes} bytes")
        if request.method in ("POST", "PUT", "PATCH") and not length:
            body = await request.body()  # chunked: read it once, bounded below
            if len(body) > self.max_bytes:
                return error_response(request, 413,
                                      f"Request body larger than {self.max_bytes} bytes")
        return await call_next(request)


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
