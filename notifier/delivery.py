"""Delivery: claim one delivery, send it through its method, record the attempt and what follows.

States: pending → delivering → delivered | retrying | failed; skipped when the notification is
disabled. A delivery is claimed by exactly one worker (a conditional UPDATE), so duplicate broker
messages are harmless. Retries wait in the database; ``notifier.scheduler`` re-enqueues them.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from notifier.db import transaction
from notifier.errors import DeliveryError, ReceiverGone, RetryableDeliveryError
from notifier.inapp import notify_disabled
from notifier.methods import DeliveryContext, Services, get_method
from notifier.models import Attempt, Delivery, DeliveryState, Event, Notification, utcnow

log = logging.getLogger(__name__)

JITTER = 0.2
ERROR_TEXT_MAX = 500


@dataclass(frozen=True)
class Policy:
    """What the settings say about retries and failure accounting."""

    retry_schedule_s: tuple[float, ...]
    max_failures: int
    claim_timeout_s: float

    @property
    def max_attempts(self) -> int:
        return len(self.retry_schedule_s)


@dataclass(frozen=True)
class Outcome:
    """What happened to a delivery when a task ran it."""

    delivery_id: str
    state: str
    attempt: int = 0
    max_attempts: int = 0
    status_code: int | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    ran: bool = True

    @property
    def failed_attempt(self) -> bool:
        return self.state in (DeliveryState.RETRYING.value, DeliveryState.FAILED.value) and self.ran

    def describe(self) -> str:
        reason = self.error or f"HTTP {self.status_code}"
        text = f"{reason} (attempt {self.attempt} of {self.max_attempts})"
        if self.state == DeliveryState.RETRYING.value and self.next_attempt_at:
            return f"{text}; next attempt at {self.next_attempt_at.isoformat(timespec='seconds')}"
        if self.state == DeliveryState.FAILED.value:
            return f"{text}; no attempts left"
        return f"{text}; {self.state}"


def run_delivery(factory: sessionmaker[Session], delivery_id: str, *, policy: Policy,
                 services: Services, clock: Callable[[], datetime] = utcnow,
                 rng: random.Random | None = None) -> Outcome:
    """Claim, send and record one attempt of ``delivery_id``."""
    with transaction(factory) as session:
        claimed = _claim(session, delivery_id, clock(), policy)
    if isinstance(claimed, Outcome):
        return claimed
    started = clock()
    error: DeliveryError | None = None
    result = None
    try:
        result = get_method(claimed.method_name).send(claimed.context, services)
    except DeliveryError as exc:
        error = exc
    except Exception as exc:  # a bug in a method must not leave the delivery stuck
        log.exception("delivery %s: method %s raised", delivery_id, claimed.method_name)
        error = RetryableDeliveryError("internal", f"internal error: {type(exc).__name__}")
    duration_ms = int((clock() - started).total_seconds() * 1000)
    if result is not None and result.duration_ms:
        duration_ms = result.duration_ms
    attempt = Attempt(
        delivery_id=delivery_id, number=claimed.context.attempt, started_at=started,
        duration_ms=duration_ms,
        status_code=error.status_code if error else (result.status_code if result else None),
        error_kind=error.kind if error else None,
        error=_clip(str(error)) if error else None,
        response_excerpt=error.response_excerpt if error else (result.response_excerpt if result else None),
    )
    with transaction(factory) as session:
        return record_attempt(session, attempt, error, policy, clock(), rng or random)


@dataclass(frozen=True)
class _Claimed:
    method_name: str
    context: DeliveryContext


def _claim(session: Session, delivery_id: str, now: datetime, policy: Policy) -> _Claimed | Outcome:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        return Outcome(delivery_id, "missing", ran=False)
    if delivery.state != DeliveryState.PENDING.value:
        return Outcome(delivery_id, delivery.state, delivery.attempts, policy.max_attempts,
                       ran=False)
    notification = session.scalars(
        select(Notification).where(Notification.uuid == delivery.notification_uuid)
    ).one()
    if not notification.enabled and not delivery.is_test:
        delivery.state, delivery.last_error = DeliveryState.SKIPPED.value, "notification disabled"
        return Outcome(delivery_id, delivery.state, delivery.attempts, policy.max_attempts,
                       error=delivery.last_error, ran=False)
    claimed = session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.state == DeliveryState.PENDING.value,
               Delivery.attempts == delivery.attempts)
        .values(state=DeliveryState.DELIVERING.value, attempts=Delivery.attempts + 1,
                claimed_until=now + timedelta(seconds=policy.claim_timeout_s))
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        return Outcome(delivery_id, DeliveryState.DELIVERING.value, ran=False)
    event = session.get(Event, delivery.event_id)
    return _Claimed(notification.method, DeliveryContext(
        delivery_id=delivery_id, event=event.name, repository=event.repository,
        event_data=event.payload, config=notification.config, attempt=delivery.attempts + 1,
        now=now, performer=event.performer, title=notification.title,
        event_config=notification.event_config, notification_uuid=notification.uuid,
    ))


def record_attempt(session: Session, attempt: Attempt, error: DeliveryError | None,
                   policy: Policy, now: datetime, rng: random.Random) -> Outcome:
    """Store one finished attempt and move the delivery to its next state."""
    delivery = session.get(Delivery, attempt.delivery_id, with_for_update=True)
    if delivery.state != DeliveryState.DELIVERING.value or delivery.attempts != attempt.number:
        log.warning("delivery %s: attempt %s ended after its claim was closed; not recorded",
                    delivery.id, attempt.number)
        return Outcome(delivery.id, delivery.state, attempt.number, policy.max_attempts, ran=False)
    session.add(attempt)
    this_round = attempt.number - delivery.attempts_before_redelivery
    delivery.claimed_until = None
    delivery.last_status_code = attempt.status_code
    delivery.last_error = attempt.error
    notification = session.scalars(
        select(Notification).where(Notification.uuid == delivery.notification_uuid)
        .with_for_update()
    ).one()
    if error is None:
        delivery.state, delivery.delivered_at = DeliveryState.DELIVERED.value, now
        if not delivery.is_test:
            notification.number_of_failures = 0
    elif isinstance(error, RetryableDeliveryError) and this_round < policy.max_attempts:
        delivery.state = DeliveryState.RETRYING.value
        delivery.next_attempt_at = now + timedelta(
            seconds=retry_delay(policy, this_round, error.retry_after_s, rng))
    else:
        delivery.state = DeliveryState.FAILED.value
        if not delivery.is_test:  # a test says nothing about the notification's health
            _count_failure(session, notification, error, policy, now)
    return Outcome(delivery.id, delivery.state, attempt.number, policy.max_attempts,
                   attempt.status_code, attempt.error, delivery.next_attempt_at)


def retry_delay(policy: Policy, attempts_made: int, retry_after_s: float | None,
                rng: random.Random) -> float:
    """Seconds until the next attempt: the receiver's Retry-After, else the schedule ±20 %."""
    if retry_after_s is not None:
        return retry_after_s
    delay = policy.retry_schedule_s[attempts_made]
    return delay * rng.uniform(1 - JITTER, 1 + JITTER)


def _count_failure(session: Session, notification: Notification, error: DeliveryError,
                   policy: Policy, now: datetime) -> None:
    notification.number_of_failures += 1
    if not notification.enabled:
        return
    if isinstance(error, ReceiverGone):
        reason = "the receiver answered 410 Gone"
    elif notification.number_of_failures >= policy.max_failures:
        reason = (f"{notification.number_of_failures} failed deliveries in a row; "
                  f"last error: {error}")
    else:
        return
    notification.enabled = False
    notification.disabled_reason = _clip(reason)
    log.warning("notification %s disabled: %s", notification.uuid, notification.disabled_reason)
    notify_disabled(session, notification, disabled_at=now)  # ours: Quay disables silently


def _clip(text: str) -> str:
    return text if len(text) <= ERROR_TEXT_MAX else text[: ERROR_TEXT_MAX - 1] + "…"
