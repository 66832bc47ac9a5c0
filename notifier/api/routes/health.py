"""Health for load balancers and compose: no login."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from notifier.api.errors import ApiError
from notifier.db import check_schema
from notifier.errors import DatabaseNotReady

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/healthz")
def healthz() -> dict:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> dict:
    """The database and the broker answer."""
    try:
        check_schema(request.app.state.engine)
    except DatabaseNotReady as exc:  # its text may name hosts and users: the log has it
        log.warning("readiness check: %s", exc)
        raise ApiError(503, "database not ready (the API's log says why)") from None
    try:
        with request.app.state.producer().app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:  # noqa: BLE001
        log.warning("readiness check: broker not ready: %s", type(exc).__name__)
        raise ApiError(503, f"broker not ready: {type(exc).__name__}") from None
    return {"status": "ready"}
