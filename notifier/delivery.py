"""Delivery: claim one delivery, send it through its method, record the attempt and what follows.

States: pending → delivering → delivered | retrying | failed; skipped when the notification is
disabled. A delivery is claimed by exactly one worker (a conditional UPDATE), so duplicate broker
messages are harmless. Retries wait in the database; ``notifier.scheduler`` re-enqueues them.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from notifier.db import transaction
from notifier.errors import DeliveryError, ReceiverGone, RetryableDeliveryError
from notifier.inapp import notify_disabled
from notifier.methods import DeliveryContext, Services, get_method
from notifier.models import Attempt, Delivery, DeliveryState, Event, Notification, utcnow

log = logging.getLogger(__name__)

JITTER = 0.2
BUSY_ENDPOINT_ROUND_S = 1.0
ERROR_TEXT_MAX = 500
ENDPOINT_BUSY = "endpoint busy"


@dataclass(frozen=True)
class Policy:
    """What the settings say about retries and failure accounting."""

    retry_schedule_s: tuple[float, ...]
    max_failures: int
    claim_timeout_s: float
    max_in_flight_per_endpoint: int = 8
    busy_endpoint_max_delay_s: float = 300.0

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
    # What metrics and log lines need; set when the delivery was claimed.
    method: str | None = None
    notification_uuid: str | None = None
    event_id: str | None = None
    event_recorded_at: datetime | None = None
    duration_s: float | None = None

    @property
    def waiting_for_endpoint(self) -> bool:
        """Not attempted: its endpoint had the most attempts in flight, so it waits."""
        return not self.ran and self.error == ENDPOINT_BUSY

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
        outcome = record_attempt(session, attempt, error, policy, clock(), rng or random)
    return replace(outcome, method=claimed.method_name,
                   notification_uuid=claimed.context.notification_uuid,
                   event_id=claimed.event_id, event_recorded_at=claimed.event_recorded_at,
                   duration_s=duration_ms / 1000)


@dataclass(frozen=True)
class _Claimed:
    method_name: str
    context: DeliveryContext
    event_id: str | None = None
    event_recorded_at: datetime | None = None


def _claim(session: Session, delivery_id: str, now: datetime, policy: Policy) -> _Claimed | Outcome:
    """Take a pending delivery (one conditional UPDATE) and read what its attempt needs."""
    _serialize_claims_per_endpoint(session, delivery_id)
    claimed = session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.state == DeliveryState.PENDING.value,
               or_(Delivery.endpoint.is_(None),
                   _in_flight_at_same_endpoint() < policy.max_in_flight_per_endpoint))
        .values(state=DeliveryState.DELIVERING.value, attempts=Delivery.attempts + 1,
                claimed_until=now + timedelta(seconds=policy.claim_timeout_s))
        .returning(Delivery.attempts, Delivery.notification_uuid, Delivery.event_id,
                   Delivery.is_test)
        .execution_options(synchronize_session=False)
    ).first()
    if claimed is None:
        return _not_claimed(session, delivery_id, now, policy)
    found = session.execute(
        select(Notification.method, Notification.config, Notification.enabled,
               Notification.title, Notification.event_config, Event.name, Event.repository,
               Event.payload, Event.performer, Event.recorded_at)
        .join_from(Notification, Event, Event.id == claimed.event_id)
        .where(Notification.uuid == claimed.notification_uuid)
    ).one()
    if not found.enabled and not claimed.is_test:
        return _skip_disabled(session, delivery_id, claimed.attempts - 1, policy)
    return _Claimed(found.method, DeliveryContext(
        delivery_id=delivery_id, event=found.name, repository=found.repository,
        event_data=found.payload, config=found.config, attempt=claimed.attempts, now=now,
        performer=found.performer, title=found.title, event_config=found.event_config,
        notification_uuid=claimed.notification_uuid,
    ), claimed.event_id, found.recorded_at)


def _serialize_claims_per_endpoint(session: Session, delivery_id: str) -> None:
    """On PostgreSQL, claims for one endpoint take turns (a transaction-scoped advisory lock),
    so two workers cannot both see a free slot and exceed the bound. SQLite takes every write
    transaction in turn already."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(func.pg_advisory_xact_lock(func.hashtext(Delivery.endpoint)))
            .where(Delivery.id == delivery_id, Delivery.endpoint.is_not(None)))


_BUSY = aliased(Delivery, name="busy")  # built once: the claim is the hot path


def _busy_endpoint_delay(session: Session, delivery_id: str, policy: Policy) -> float:
    """How long to wait for a full endpoint: about a second per ``max_in_flight`` deliveries
    already waiting for it, so a dead receiver's backlog is retried a few at a time."""
    endpoint = select(Delivery.endpoint).where(Delivery.id == delivery_id).scalar_subquery()
    waiting = session.scalar(
        select(func.count()).select_from(Delivery)
        .where(Delivery.endpoint == endpoint,
               Delivery.state.in_([DeliveryState.PENDING.value, DeliveryState.RETRYING.value])))
    rounds = 1 + waiting // policy.max_in_flight_per_endpoint
    return min(rounds * BUSY_ENDPOINT_ROUND_S, policy.busy_endpoint_max_delay_s) \
        * random.uniform(1 - JITTER, 1 + JITTER)


def _in_flight_at_same_endpoint():
    """How many deliveries to the claimed row's endpoint are being attempted now."""
    return (select(func.count()).select_from(_BUSY)
            .where(_BUSY.endpoint == Delivery.endpoint,
                   _BUSY.state == DeliveryState.DELIVERING.value)
            .scalar_subquery())


def _not_claimed(session: Session, delivery_id: str, now: datetime, policy: Policy) -> Outcome:
    """Why a delivery could not be taken: gone, no longer pending (a duplicate message), or its
    endpoint already has the most attempts in flight: then it waits, costing no attempt."""
    current = session.execute(
        select(Delivery.state, Delivery.attempts).where(Delivery.id == delivery_id)).first()
    if current is None:
        return Outcome(delivery_id, "missing", ran=False)
    if current.state != DeliveryState.PENDING.value:
        return Outcome(delivery_id, current.state, current.attempts, policy.max_attempts,
                       ran=False)
    wait_s = _busy_endpoint_delay(session, delivery_id, policy)
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.state == DeliveryState.PENDING.value)
        .values(state=DeliveryState.RETRYING.value,
                next_attempt_at=now + timedelta(seconds=wait_s))
        .execution_options(synchronize_session=False))
    return Outcome(delivery_id, DeliveryState.RETRYING.value, current.attempts,
                   policy.max_attempts, error=ENDPOINT_BUSY, ran=False)


def _skip_disabled(session: Session, delivery_id: str, attempts: int, policy: Policy) -> Outcome:
    """Undo the claim of a disabled notification's delivery and record it as skipped."""
    reason = "notification disabled"
    session.execute(
        update(Delivery).where(Delivery.id == delivery_id)
        .values(state=DeliveryState.SKIPPED.value, attempts=attempts, claimed_until=None,
                last_error=reason)
        .execution_options(synchronize_session=False))
    return Outcome(delivery_id, DeliveryState.SKIPPED.value, attempts, policy.max_attempts,
                   error=reason, ran=False)


def record_attempt(session: Session, attempt: Attempt, error: DeliveryError | None,
                   policy: Policy, now: datetime, rng: random.Random) -> Outcome:
    """Store one finished attempt and move the delivery to its next state."""
    current = session.execute(
        select(Delivery.state, Delivery.attempts, Delivery.attempts_before_redelivery,
               Delivery.is_test, Delivery.notification_uuid)
        .where(Delivery.id == attempt.delivery_id).with_for_update()
    ).one()
    if current.state != DeliveryState.DELIVERING.value or current.attempts != attempt.number:
        log.warning("delivery %s: attempt %s ended after its claim was closed; not recorded",
                    attempt.delivery_id, attempt.number)
        return Outcome(attempt.delivery_id, current.state, attempt.number, policy.max_attempts,
                       ran=False)
    session.execute(insert(Attempt).values(  # Core, not the unit of work: this is the hot path
        {column.key: getattr(attempt, column.key) for column in Attempt.__table__.columns
         if column.key != "id"}))
    changes = _next_state(attempt, error, policy, now, rng,
                          this_round=attempt.number - current.attempts_before_redelivery)
    if not current.is_test:  # a test says nothing about the notification's health
        _account(session, current.notification_uuid, changes["state"], error, policy, now)
    session.execute(
        update(Delivery).where(Delivery.id == attempt.delivery_id)
        .values(claimed_until=None, last_status_code=attempt.status_code,
                last_error=attempt.error, **changes)
        .execution_options(synchronize_session=False))
    return Outcome(attempt.delivery_id, changes["state"], attempt.number, policy.max_attempts,
                   attempt.status_code, attempt.error, changes.get("next_attempt_at"))


def _next_state(attempt: Attempt, error: DeliveryError | None, policy: Policy, now: datetime,
                rng: random.Random, *, this_round: int) -> dict:
    """The delivery's columns after this attempt: delivered, retrying (when) or failed."""
    if error is None:
        return {"state": DeliveryState.DELIVERED.value, "delivered_at": now}
    if isinstance(error, RetryableDeliveryError) and this_round < policy.max_attempts:
        delay_s = retry_delay(policy, this_round, error.retry_after_s, rng)
        return {"state": DeliveryState.RETRYING.value,
                "next_attempt_at": now + timedelta(seconds=delay_s)}
    return {"state": DeliveryState.FAILED.value}


def _account(session: Session, notification_uuid: str, state: str,
             error: DeliveryError | None, policy: Policy, now: datetime) -> None:
    """Failure accounting: a delivered delivery resets the count, a failed one adds to it."""
    if state == DeliveryState.DELIVERED.value:
        session.execute(  # no write (and no row lock) when the count is already 0
            update(Notification)
            .where(Notification.uuid == notification_uuid, Notification.number_of_failures != 0)
            .values(number_of_failures=0).execution_options(synchronize_session=False))
    elif state == DeliveryState.FAILED.value:
        notification = session.scalars(
            select(Notification).where(Notification.uuid == notification_uuid)
            .with_for_update()).one()
        _count_failure(session, notification, error, policy, now)


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
