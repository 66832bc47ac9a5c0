"""The retry scheduler: find deliveries whose time has come and hand them back to the broker.

Run periodically (Celery beat). Every hand-back is claimed by one conditional UPDATE, so two
schedulers running at once never enqueue the same delivery twice. It also recovers what a broker
may lose: a delivery whose worker died mid-attempt (its claim expired) gets a ``worker_lost``
attempt and follows the retry schedule; a pending delivery whose message went missing (enqueued
longer ago than the visibility timeout) is enqueued again (a duplicate is harmless).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from notifier.db import transaction
from notifier.delivery import Policy, RoundBase, record_attempt
from notifier.errors import RetryableDeliveryError
from notifier.fanout import DeliveryRef
from notifier.models import Attempt, Delivery, DeliveryState, Event

WORKER_LOST = RetryableDeliveryError(
    "worker_lost", "the worker died during the attempt (no answer recorded)")


def claim_due(session: Session, now: datetime, *, batch: int,
              stale_after_s: float) -> list[DeliveryRef]:
    """Claim due retries and stale pending deliveries; returns them to enqueue after commit."""
    due = (select(Delivery.id)
           .where(Delivery.state == DeliveryState.RETRYING.value, Delivery.next_attempt_at <= now)
           .order_by(Delivery.next_attempt_at).limit(batch).scalar_subquery())
    ids = list(session.scalars(
        update(Delivery)
        .where(Delivery.id.in_(due), Delivery.state == DeliveryState.RETRYING.value)
        .values(state=DeliveryState.PENDING.value, next_attempt_at=None, enqueued_at=now)
        .returning(Delivery.id)
    ))
    stale_before = now - timedelta(seconds=stale_after_s)
    stale = (select(Delivery.id)
             .where(Delivery.state == DeliveryState.PENDING.value,
                    Delivery.enqueued_at < stale_before)
             .limit(batch).scalar_subquery())
    ids += session.scalars(
        update(Delivery)
        .where(Delivery.id.in_(stale), Delivery.state == DeliveryState.PENDING.value,
               Delivery.enqueued_at < stale_before)
        .values(enqueued_at=now)
        .returning(Delivery.id)
    )
    return delivery_refs(session, ids)


def delivery_refs(session: Session, ids: list[str]) -> list[DeliveryRef]:
    """The broker's view of these deliveries, in one query."""
    if not ids:
        return []
    rows = session.execute(
        select(Delivery.id, Delivery.method, Delivery.notification_uuid, Event.name,
               Event.repository)
        .join(Event, Event.id == Delivery.event_id)
        .where(Delivery.id.in_(ids))
    )
    return [DeliveryRef(*row) for row in rows]


def recover_lost(factory: sessionmaker[Session], now: datetime, policy: Policy, *, batch: int,
                 rng: random.Random | None = None) -> int:
    """Close attempts whose worker died (claim expired) as ``worker_lost``; returns how many."""
    with factory() as session:
        lost = session.execute(
            select(Delivery.id, Delivery.attempts, Delivery.attempts_before_redelivery,
                   Delivery.is_test)
            .where(Delivery.state == DeliveryState.DELIVERING.value,
                   Delivery.claimed_until < now)
            .limit(batch)
        ).all()
    for delivery_id, number, attempts_before_redelivery, is_test in lost:
        attempt = Attempt(delivery_id=delivery_id, number=number, started_at=now,
                          error_kind=WORKER_LOST.kind, error=str(WORKER_LOST))
        with transaction(factory) as session:
            record_attempt(session, attempt, WORKER_LOST, policy, now, rng or random,
                           base=RoundBase(attempts_before_redelivery, is_test))
    return len(lost)
