"""The HTTP API (FastAPI): `notifier api` serves it with uvicorn."""

from notifier.api.app import create_app

__all__ = ["create_app"]
