"""The Celery tasks: thin wrappers that unpack ids, call one plain function, map the outcome."""

from __future__ import annotations

import logging

from celery.exceptions import Retry
from sqlalchemy.exc import SQLAlchemyError

from config.celery import DELIVER_TASK, ENQUEUE_DUE_TASK, FAN_OUT_TASK, PRUNE_LEDGER_TASK
from notifier.logging_config import log_outcome
from workers.application import app, producer, runtime

log = logging.getLogger(__name__)

FAN_OUT_MAX_RETRIES = 12


class DeliveryFailed(Exception):
    """A delivery attempt failed; the message says why and what happens next."""


class EndpointBusy(Exception):
    """Not attempted: the endpoint has the most attempts in flight; the delivery waits."""


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


@app.task(name=DELIVER_TASK, bind=True, throws=(DeliveryFailed,))
def deliver(self, delivery_id: str) -> str:
    """One attempt of one delivery; FAILURE (with the reason) when the attempt failed, RETRY
    when its endpoint was full and it waits (no attempt made)."""
    outcome = runtime().deliver(delivery_id)
    log_outcome(outcome, self.request.argsrepr or f"delivery={delivery_id}")
    if outcome.failed_attempt:
        raise DeliveryFailed(outcome.describe())
    if outcome.waiting_for_endpoint:
        # Flower shows RETRY with this reason; the scheduler sends it again (no re-publish here).
        raise Retry(exc=EndpointBusy("endpoint busy: waiting for a free slot, no attempt used"))
    return outcome.state


@app.task(name=ENQUEUE_DUE_TASK, ignore_result=True, send_events=False)
def enqueue_due() -> int:
    """Hand due retries (and deliveries a broker lost) back to the delivery queue."""
    refs = runtime().due_deliveries()
    # If the broker refuses these, the claimed rows stay pending and are enqueued again once
    # they are older than the visibility timeout.
    producer().enqueue_deliveries(refs)
    return len(refs)


@app.task(name=PRUNE_LEDGER_TASK, ignore_result=True)
def prune_ledger() -> str:
    """Delete finished deliveries (and their attempts, and orphan events) past retention."""
    pruned = runtime().prune_ledger()
    log.info("ledger retention: %s", pruned.describe())
    return pruned.describe()
