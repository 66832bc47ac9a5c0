"""Delivery: claim one delivery, send it through its method, record the attempt and what follows.

States: pending → delivering → delivered | retrying | failed; skipped when the notification is
disabled. A delivery is claimed by exactly one worker (a conditional UPDATE, ``notifier.claims``),
so duplicate broker messages are harmless. Retries wait in the database; ``notifier.scheduler``
re-enqueues them. On PostgreSQL a delivery costs two statements: the claim and the record (and
one more when its endpoint's pacing changes, ``notifier.pacing``).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Callable

from sqlalchemy import Boolean, Integer, bindparam, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from notifier.claims import claim_statements
from notifier.db import (dialect_name, first_row, hot, insert_ignore_rows, reconnecting,
                         transaction)
from notifier.errors import DeliveryError, ReceiverGone, RetryableDeliveryError
from notifier.inapp import notify_disabled
from notifier.methods import DeliveryContext, Services, get_method
from notifier.models import (Attempt, Delivery, DeliveryState, EndpointSlot, Notification,
                             still_in, utcnow)
from notifier.pacing import pace, take_tickets

log = logging.getLogger(__name__)

JITTER = 0.2
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
    claimed = reconnecting(lambda: _claim(factory, delivery_id, clock(), policy))
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
    finished = clock()
    outcome = reconnecting(lambda: _record(factory, attempt, error, policy, finished,
                                           rng or random, claimed.base))
    return replace(outcome, method=claimed.method_name,
                   notification_uuid=claimed.context.notification_uuid,
                   event_id=claimed.event_id, event_recorded_at=claimed.event_recorded_at,
                   duration_s=duration_ms / 1000)


@dataclass(frozen=True)
class RoundBase:
    """What the record needs to know of a claimed delivery besides its attempt."""

    attempts_before_redelivery: int
    is_test: bool
    endpoint: str | None = None  # with the endpoint's pacing when claimed (notifier.pacing)
    slow_limit: int | None = None


@dataclass(frozen=True)
class _Claimed:
    method_name: str
    context: DeliveryContext
    base: RoundBase
    event_id: str | None = None
    event_recorded_at: datetime | None = None


def _claim(factory: sessionmaker[Session], delivery_id: str, now: datetime,
           policy: Policy) -> _Claimed | Outcome:
    """Take a pending delivery and a slot at its endpoint, and read what its attempt needs."""
    until = now + timedelta(seconds=policy.claim_timeout_s)
    with hot(factory) as db:
        taken = claim_statements(db).take(db, delivery_id, until,
                                          policy.max_in_flight_per_endpoint)
        if taken is None:
            return _not_claimed(db, delivery_id, policy)
        if taken["attempts"] is None:  # the endpoint is full: the claim was undone
            db.rollback()
            outcome = _wait_for_endpoint(db, delivery_id, taken["endpoint"], now, policy)
        elif not taken["enabled"] and not taken["is_test"]:
            outcome = _skip_disabled(db, delivery_id, taken["attempts"] - 1, policy)
        else:
            db.commit()
            return _Claimed(taken["method"], DeliveryContext(
                delivery_id=delivery_id, event=taken["name"], repository=taken["repository"],
                event_data=taken["payload"], config=taken["config"], attempt=taken["attempts"],
                now=now, performer=taken["performer"], title=taken["title"],
                event_config=taken["event_config"],
                notification_uuid=taken["notification_uuid"],
            ), RoundBase(taken["attempts_before_redelivery"], taken["is_test"],
                         taken["endpoint"], taken["slow_limit"]),
                taken["event_id"], taken["recorded_at"])
        db.commit()
        return replace(outcome, method=taken["method"])


def _not_claimed(session: Session | Connection, delivery_id: str, policy: Policy) -> Outcome:
    """Gone, or no longer pending (a duplicate message): nothing to do."""
    current = session.execute(
        select(Delivery.state, Delivery.attempts).where(Delivery.id == delivery_id)).first()
    if current is None:
        return Outcome(delivery_id, "missing", ran=False)
    return Outcome(delivery_id, current.state, current.attempts, policy.max_attempts, ran=False)


def _wait_for_endpoint(session: Session | Connection, delivery_id: str, endpoint: str,
                       now: datetime, policy: Policy) -> Outcome:
    """The endpoint has the most attempts in flight: the delivery waits, costing no attempt,
    until the endpoint's next wait ticket (``notifier.pacing``), at most the busy-endpoint
    delay."""
    insert_ignore_rows(session, EndpointSlot.__table__, [{"endpoint": endpoint}])
    [ticket_s] = take_tickets(session, {endpoint: 1}, now.timestamp(),
                              policy.max_in_flight_per_endpoint)[endpoint]
    waiting = first_row(session, _to_wait(), {
        "delivery_id": delivery_id, "next_attempt_at": wait_until(now, ticket_s, policy)})
    return Outcome(delivery_id, DeliveryState.RETRYING.value,
                   waiting["attempts"] if waiting else 0, policy.max_attempts,
                   error=ENDPOINT_BUSY, ran=False)


@lru_cache(maxsize=1)
def _to_wait():
    deliveries = Delivery.__table__
    return (update(deliveries)
            .where(deliveries.c.id == bindparam("delivery_id"), still_in(DeliveryState.PENDING))
            .values(state=DeliveryState.RETRYING.value,
                    next_attempt_at=bindparam("next_attempt_at",
                                              type_=deliveries.c.next_attempt_at.type))
            .returning(deliveries.c.attempts))


def wait_until(now: datetime, ticket_s: float, policy: Policy) -> datetime:
    """When a delivery holding the wait ticket ``ticket_s`` is tried again."""
    return now + timedelta(seconds=min(ticket_s - now.timestamp(),
                                       policy.busy_endpoint_max_delay_s))


def _skip_disabled(session: Session | Connection, delivery_id: str, attempts: int,
                   policy: Policy) -> Outcome:
    """Undo the claim of a disabled notification's delivery and record it as skipped."""
    reason = "notification disabled"
    session.execute(
        update(Delivery).where(Delivery.id == delivery_id)
        .values(state=DeliveryState.SKIPPED.value, attempts=attempts, claimed_until=None,
                last_error=reason)
        .execution_options(synchronize_session=False))
    return Outcome(delivery_id, DeliveryState.SKIPPED.value, attempts, policy.max_attempts,
                   error=reason, ran=False)


def _record(factory: sessionmaker[Session], attempt: Attempt, error: DeliveryError | None,
            policy: Policy, now: datetime, rng: random.Random, base: RoundBase) -> Outcome:
    """Record the attempt: on PostgreSQL one statement, unless it ends the delivery in
    ``failed`` (failure accounting locks the notification and may disable it)."""
    changes = _next_state(attempt, error, policy, now, rng,
                          this_round=attempt.number - base.attempts_before_redelivery)
    counts = changes["state"] == DeliveryState.FAILED.value and not base.is_test
    with hot(factory) as db:
        if dialect_name(db) == "postgresql" and not counts:
            moved = first_row(db, _pg_record(), _record_params(attempt, changes, base))
            if moved is None:
                return _not_recorded(db, attempt, policy)
            _pace(db, attempt, error, base, policy)
            return _recorded(attempt, changes, policy)
    with transaction(factory) as session:
        outcome = record_attempt(session, attempt, error, policy, now, rng, base=base,
                                 changes=changes)
        if outcome.ran:
            _pace(session, attempt, error, base, policy)
        return outcome


def _pace(db: Session | Connection, attempt: Attempt, error: DeliveryError | None,
          base: RoundBase, policy: Policy) -> None:
    pace(db, base.endpoint, base.slow_limit, error, attempt.status_code,
         policy.max_in_flight_per_endpoint)


def record_attempt(session: Session, attempt: Attempt, error: DeliveryError | None,
                   policy: Policy, now: datetime, rng: random.Random, *, base: RoundBase,
                   changes: dict | None = None) -> Outcome:
    """Store one finished attempt and move the delivery to its next state (in ``session``'s
    transaction), if its claim is still the one the attempt was made under."""
    changes = changes or _next_state(
        attempt, error, policy, now, rng,
        this_round=attempt.number - base.attempts_before_redelivery)
    moved = session.execute(
        _moved(update(Delivery)).values(claimed_until=None, last_status_code=attempt.status_code,
                                        last_error=attempt.error, **changes)
        .returning(Delivery.notification_uuid),
        {"delivery_id": attempt.delivery_id, "number": attempt.number}).first()
    if moved is None:
        return _not_recorded(session, attempt, policy)
    session.execute(insert(Attempt).values(  # Core, not the unit of work: this is the hot path
        {column.key: getattr(attempt, column.key) for column in Attempt.__table__.columns
         if column.key != "id"}))
    if not base.is_test:  # a test says nothing about the notification's health
        _account(session, moved.notification_uuid, changes["state"], error, policy, now)
    return _recorded(attempt, changes, policy)


def _moved(statement):
    """``statement`` (an UPDATE of deliveries) limited to the claim the attempt ran under."""
    return statement.where(Delivery.id == bindparam("delivery_id"),
                           still_in(DeliveryState.DELIVERING),
                           Delivery.attempts == bindparam("number", type_=Integer))


def _recorded(attempt: Attempt, changes: dict, policy: Policy) -> Outcome:
    return Outcome(attempt.delivery_id, changes["state"], attempt.number, policy.max_attempts,
                   attempt.status_code, attempt.error, changes.get("next_attempt_at"))


def _not_recorded(session: Session | Connection, attempt: Attempt, policy: Policy) -> Outcome:
    state = session.scalar(select(Delivery.state).where(Delivery.id == attempt.delivery_id))
    log.warning("delivery %s: attempt %s ended after its claim was closed; not recorded",
                attempt.delivery_id, attempt.number)
    return Outcome(attempt.delivery_id, state or "missing", attempt.number, policy.max_attempts,
                   ran=False)


_ATTEMPT_COLUMNS = ("number", "started_at", "duration_ms", "status_code", "error_kind", "error",
                    "response_excerpt")


@lru_cache(maxsize=1)
def _pg_record():
    """One PostgreSQL statement: move the delivery (if the claim still holds), add its attempt
    row, and reset the notification's failure count when delivered and not already 0."""
    moved = (_moved(update(Delivery))
             .values(state=bindparam("state"), claimed_until=None,
                     last_status_code=bindparam("status_code"), last_error=bindparam("error"),
                     next_attempt_at=bindparam("next_attempt_at"),
                     delivered_at=bindparam("delivered_at"))
             .returning(Delivery.id, Delivery.notification_uuid).cte("moved"))
    logged = (insert(Attempt)
              .from_select(["delivery_id", *_ATTEMPT_COLUMNS], select(
                  moved.c.id, *(bindparam(name, type_=Attempt.__table__.c[name].type)
                                for name in _ATTEMPT_COLUMNS)))
              .returning(Attempt.id).cte("logged"))
    healthy = (update(Notification)
               .where(Notification.uuid.in_(select(moved.c.notification_uuid)),
                      bindparam("reset_failures", type_=Boolean),
                      Notification.number_of_failures != 0)
               .values(number_of_failures=0).returning(Notification.uuid).cte("healthy"))
    return select(moved.c.id).add_cte(logged, healthy)


def _record_params(attempt: Attempt, changes: dict, base: RoundBase) -> dict:
    return {"delivery_id": attempt.delivery_id, "state": changes["state"],
            "next_attempt_at": changes.get("next_attempt_at"),
            "delivered_at": changes.get("delivered_at"),
            "reset_failures": changes["state"] == DeliveryState.DELIVERED.value
            and not base.is_test,
            **{name: getattr(attempt, name) for name in _ATTEMPT_COLUMNS}}


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
    notification.disabled_at = now
    log.warning("notification %s disabled: %s", notification.uuid, notification.disabled_reason)
    notify_disabled(session, notification, disabled_at=now)  # ours: Quay disables silently


def _clip(text: str) -> str:
    return text if len(text) <= ERROR_TEXT_MAX else text[: ERROR_TEXT_MAX - 1] + "…"
