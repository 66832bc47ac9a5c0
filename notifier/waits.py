"""Waiting out transient errors, with tenacity, so every retry policy reads the same way."""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from tenacity import (before_sleep_log, retry_if_exception_type, stop_after_delay,
                      wait_exponential, Retrying)

from notifier.errors import DatabaseNotReady

log = logging.getLogger(__name__)


def wait_for_database(engine: Engine, timeout_s: float) -> None:
    """Return once the database answers; DatabaseNotReady (its first line) after ``timeout_s``.

    For start-up next to a database that is still coming up (compose, a fresh machine).
    """
    policy = Retrying(retry=retry_if_exception_type(OperationalError),
                      wait=wait_exponential(multiplier=0.2, max=2.0),
                      stop=stop_after_delay(timeout_s), reraise=True,
                      before_sleep=before_sleep_log(log, logging.INFO))
    try:
        for attempt in policy:
            with attempt, engine.connect() as connection:
                connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        detail = str(exc.orig).strip().splitlines()[0]
        raise DatabaseNotReady(f"database unreachable after {timeout_s:g} s: {detail}") from None
