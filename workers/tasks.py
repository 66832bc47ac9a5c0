"""The Celery tasks: thin wrappers that unpack ids, call one plain function, map the outcome.

What a task does when its work fails (see "Guarantees" in the README):
- the database is unavailable: the runtime already waited a bounded time; the message goes back
  to the queue as it is (same id, same try count), so an outage of any length loses nothing;
- anything else, for a delivery message: the delivery ends ``failed`` with the reason (it can be
  redelivered), so the scheduler does not hand it out again forever;
- anything else, for a fan-out message: tried again with backoff, and after
  ``NOTIFIER_FANOUT_MAX_TRIES`` tries (at once for input that can never be valid) moved to the
  dead-letter store with the reason. A message the broker hands out again because its worker
  died counts as a failed try too, so a message that kills its worker cannot loop forever.
"""

from __future__ import annotations

import logging

from celery.exceptions import Ignore, Retry

from config.celery import DELIVER_TASK, ENQUEUE_DUE_TASK, FAN_OUT_TASK, PRUNE_LEDGER_TASK
from notifier.errors import BrokerUnavailable, InvalidInput
from notifier.logging_config import log_outcome
from notifier.outage import first_line, is_database_unavailable
from notifier.producer import describe_event
from workers.application import app, producer, runtime

log = logging.getLogger(__name__)

FAN_OUT_BACKOFF_MAX_S = 30.0


class DeliveryFailed(Exception):
    """A delivery attempt failed; the message says why and what happens next."""


class DeadLettered(Exception):
    """A message was moved to the dead-letter store; the message says which and why."""


class WorkerLost(Exception):
    """The broker handed a message out again: the worker that had it died (or lost the broker)."""


class EndpointBusy(Exception):
    """Not attempted: the endpoint has the most attempts in flight; the delivery waits."""


@app.task(name=FAN_OUT_TASK, bind=True, throws=(DeadLettered,))
def fan_out(self, message: dict) -> int:
    """Record an event and enqueue one delivery per notification it concerns."""
    if (self.request.delivery_info or {}).get("redelivered"):
        return _fan_out_failed(self, message, WorkerLost(
            "the broker handed this message out again: the worker that had it died "
            "or lost its broker connection"))
    try:
        refs = runtime().fan_out(message)
    except Exception as exc:  # noqa: BLE001 - every failure is retried, requeued or buried
        return _fan_out_failed(self, message, exc)
    try:
        producer().enqueue_deliveries(refs)
    except BrokerUnavailable as exc:
        # The deliveries are recorded as pending: the scheduler enqueues pending deliveries
        # whose message went missing once they are older than the visibility timeout.
        log.warning("event %s recorded, its deliveries not enqueued: %s", message.get("event_id"),
                    exc)
    return len(refs)


def _fan_out_failed(task, message, exc: Exception):
    tries = task.request.retries + 1
    argsrepr = describe_event(message) if isinstance(message, dict) else None
    if is_database_unavailable(exc):
        _put_back(task, argsrepr)
    if isinstance(exc, InvalidInput) or tries >= runtime().settings.fanout_max_tries:
        reason = first_line(exc)
        try:
            letter = runtime().bury(FAN_OUT_TASK, [message], reason=reason, tries=tries)
        except Exception as bury_exc:
            if is_database_unavailable(bury_exc):
                _put_back(task, argsrepr)  # buried on a later try, once the database is back
            raise
        log.error("fan-out message %s moved to the dead-letter store as #%d after %d tries: "
                  "%s", argsrepr, letter, tries, reason)
        raise DeadLettered(f"moved to the dead-letter store as #{letter} after {tries} "
                           f"tries: {reason}; `notifier dead-letters list` shows it")
    countdown = min(2.0 ** tries, FAN_OUT_BACKOFF_MAX_S, runtime().settings.database_wait_bound_s)
    raise task.retry(exc=exc, countdown=countdown, max_retries=None, argsrepr=argsrepr)


def _put_back(task, argsrepr: str | None) -> None:
    """Send this message to its queue again as it is (same id, same tries) and let this copy
    go: the database is away, which says nothing about the message."""
    task.signature_from_request(argsrepr=argsrepr).apply_async()
    raise Ignore()


@app.task(name=DELIVER_TASK, bind=True, throws=(DeliveryFailed,))
def deliver(self, delivery_id: str) -> str:
    """One attempt of one delivery; FAILURE (with the reason) when the attempt failed, RETRY
    when its endpoint was full and it waits (no attempt made)."""
    try:
        outcome = runtime().deliver(delivery_id)
    except Exception as exc:
        if is_database_unavailable(exc):
            _put_back(self, self.request.argsrepr)
        # A bug, not a receiver: end the delivery with the reason rather than have the
        # scheduler hand it out again and again. (Celery logs the traceback.)
        runtime().abandon(delivery_id, f"not attempted: {first_line(exc)} (see the worker log)")
        raise
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
