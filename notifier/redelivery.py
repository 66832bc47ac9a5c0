"""Sending failed or skipped deliveries again, one at a time or in bulk, through the pipeline."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from notifier.errors import InvalidInput
from notifier.fanout import DeliveryRef
from notifier.models import Delivery, DeliveryState, utcnow
from notifier.scheduler import delivery_refs

REDELIVERABLE = frozenset({DeliveryState.FAILED.value, DeliveryState.SKIPPED.value})


def redeliver(session: Session, notification_uuid: str, *, delivery_ids: list[str] | None = None,
              since: datetime | None = None, states: list[str] | None = None,
              now: datetime | None = None, max_count: int | None = None) -> list[DeliveryRef]:
    """Put the matching failed/skipped deliveries back to pending with a full retry schedule.

    Returns what to enqueue after commit. The webhook-id (the delivery id) stays the same.
    ``max_count``: the oldest that many at most.
    """
    states = list(states or REDELIVERABLE)
    if not set(states) <= REDELIVERABLE:
        raise InvalidInput(f"only {sorted(REDELIVERABLE)} deliveries can be sent again")
    chosen = select(Delivery.id).where(Delivery.notification_uuid == notification_uuid,
                                       Delivery.state.in_(states))
    if delivery_ids is not None:
        chosen = chosen.where(Delivery.id.in_(delivery_ids))
    if since is not None:
        chosen = chosen.where(Delivery.created_at >= since)
    if max_count is not None:
        chosen = chosen.order_by(Delivery.created_at, Delivery.id).limit(max_count)
    ids = list(session.scalars(
        update(Delivery)
        .where(Delivery.id.in_(chosen.scalar_subquery()), Delivery.state.in_(states))
        .values(state=DeliveryState.PENDING.value,
                attempts_before_redelivery=Delivery.attempts, next_attempt_at=None,
                enqueued_at=now or utcnow(), last_error=None)
        .returning(Delivery.id)))
    return delivery_refs(session, ids)


def redeliver_one(session: Session, delivery: Delivery, *,
                  now: datetime | None = None) -> list[DeliveryRef]:
    """Send one failed or skipped delivery again; InvalidInput when it is in another state."""
    if delivery.state not in REDELIVERABLE:
        raise InvalidInput(f"Delivery {delivery.id} is {delivery.state}: only failed or skipped "
                           "deliveries can be sent again")
    return redeliver(session, delivery.notification_uuid, delivery_ids=[delivery.id], now=now)
