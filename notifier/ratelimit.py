"""Rate limits where a person can make the service act: confirmation e-mails, test
notifications, redeliveries.

Fixed windows counted in the database (one row per limit and key, locked while counted), so
every API process shares them and a refused call changes nothing. A refusal is RateLimited,
which says when to try again (the API answers 429 with ``Retry-After``).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.db import insert_ignore
from notifier.errors import RateLimited
from notifier.models import RateLimitWindow, utcnow

HOUR_S = 3600.0


@dataclass(frozen=True)
class Limit:
    """At most ``count`` uses per ``window_s`` seconds, for each key."""

    what: str  # what is counted, in words: "confirmation e-mails to one address"
    count: int
    window_s: float = HOUR_S


def take(session: Session, limit: Limit, key: str, *, now: datetime | None = None) -> None:
    """Count one use of ``limit`` by ``key``; RateLimited when the window has none left."""
    now = now or utcnow()
    key_hash = hashlib.sha256(f"{limit.what}\n{key}".encode()).hexdigest()
    session.execute(insert_ignore(session, RateLimitWindow).values(
        key_hash=key_hash, window_started_at=now, used=0))
    window = session.scalars(select(RateLimitWindow).where(RateLimitWindow.key_hash == key_hash)
                             .with_for_update()).one()
    elapsed_s = (now - window.window_started_at).total_seconds()
    if elapsed_s >= limit.window_s or elapsed_s < 0:
        window.window_started_at, window.used, elapsed_s = now, 0, 0.0
    if window.used >= limit.count:
        retry_after_s = max(1, math.ceil(limit.window_s - elapsed_s))
        raise RateLimited(f"Too many {limit.what}: at most {limit.count} per "
                          f"{_duration(limit.window_s)}; try again in {retry_after_s} s",
                          retry_after_s=retry_after_s)
    window.used += 1
    session.flush()


def _duration(seconds: float) -> str:
    return "hour" if seconds == HOUR_S else f"{seconds:g} s"
