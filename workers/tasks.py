"""The Celery tasks: thin wrappers that unpack ids, call one plain function, map the outcome."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from config.celery import DELIVER_TASK, ENQUEUE_DUE_TASK, FAN_OUT_TASK
from workers.application import app, producer, runtime

FAN_OUT_MAX_RETRIES = 12


class DeliveryFailed(Exception):
    """A delivery attempt failed; the message says why and what happens next."""


@app.task(name=FAN_OUT_TASK, bind=True, max_retries=FAN_OUT_MAX_RETRIES)
def fan_out(self, message: dict) -> int:
    """Record an event and enqueue one delivery per notification it concerns."""
    try:
        refs = runtime().fan_out(message)
    except SQLAlchemyError as exc:
        # Short waits only: a countdown longer than the visibility timeout would be redelivered.
        limit = runtime().settings.visibility_timeout_s / 2
        raise self.retry(exc=exc, countdown=min(2 ** self.request.retries, limit, 60)) from None
    producer().enqueue_deliveries(refs)
    return len(refs)


@app.task(name=DELIVER_TASK)
def deliver(delivery_id: str) -> str:
    """One attempt of one delivery; FAILURE (with the reason) when the attempt failed."""
    outcome = runtime().deliver(delivery_id)
    if outcome.failed_attempt:
        raise DeliveryFailed(outcome.describe())
    return outcome.state


@app.task(name=ENQUEUE_DUE_TASK, ignore_result=True)
def enqueue_due() -> int:
    """Hand due retries (and deliveries a broker lost) back to the delivery queue."""
    refs = runtime().due_deliveries()
    # If the broker refuses these, the claimed rows stay pending and are enqueued again once
    # they are older than the visibility timeout.
    producer().enqueue_deliveries(refs)
    return len(refs)
