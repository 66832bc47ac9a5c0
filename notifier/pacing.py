"""Endpoint pacing: an endpoint whose attempts time out gets a smaller bound on attempts in
flight, so a receiver that hangs holds one worker slot, not the setting's bound of them, and
the receivers that answer keep the workers.

Multiplicative decrease, additive increase (as TCP paces a congested link): an attempt that timed
out halves the endpoint's bound (at least 1); an attempt that got an answer in time, whatever its
status, raises it by one, and at the setting's bound the endpoint is back to normal (NULL). Only
an attempt that changes something costs a statement: a timeout, or an answer from a paced
endpoint. A refused connection and the like change nothing (they held no slot for long).
"""

from __future__ import annotations

import logging

from sqlalchemy import case, func, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from notifier.errors import TIMEOUT_KIND, DeliveryError
from notifier.models import EndpointSlot

log = logging.getLogger(__name__)


def pace(db: Session | Connection, endpoint: str | None, slow_limit: int | None,
         error: DeliveryError | None, status_code: int | None, max_in_flight: int) -> None:
    """After an attempt at ``endpoint`` claimed under ``slow_limit`` (None: not paced)."""
    if endpoint is None:
        return
    if error is not None and error.kind == TIMEOUT_KIND:
        current = func.coalesce(EndpointSlot.slow_limit, max_in_flight)
        halved = db.scalar(
            update(EndpointSlot).where(EndpointSlot.endpoint == endpoint)
            .values(slow_limit=case((current < 2, 1), else_=current // 2))
            .returning(EndpointSlot.slow_limit))
        if halved is not None and halved != (slow_limit or max_in_flight):
            log.warning("endpoint %s timed out: at most %d attempt(s) in flight there until it "
                        "answers in time again", endpoint, halved)
    elif slow_limit is not None and (error is None or status_code is not None):
        raised = EndpointSlot.slow_limit + 1
        db.execute(update(EndpointSlot)
                   .where(EndpointSlot.endpoint == endpoint, EndpointSlot.slow_limit.is_not(None))
                   .values(slow_limit=case((raised >= max_in_flight, None), else_=raised)))
