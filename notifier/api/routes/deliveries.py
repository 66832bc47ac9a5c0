"""Ours, beyond Quay: a notification's delivery ledger, and sending deliveries again.

Pages are keyset-paginated, newest first: the cursor is the (created_at, id) of the last
delivery of the previous page, so a delivery recorded meanwhile never shifts a page.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any, Iterable

from fastapi import APIRouter, Body, Depends, Query
from sqlalchemy.orm import Session

from config import Settings
from notifier.api.deps import PrincipalDep, ProducerDep, SessionDep, SettingsDep, rate_limit
from notifier.api.errors import ApiError
from notifier.api.models import Redelivery
from notifier.api.routes.notifications import PREFIX, AdminNotification
from notifier.api.tokens import Principal
from notifier.errors import BrokerUnavailable, NotFound
from notifier.fanout import DeliveryRef
from notifier.ledger import Position, delivery_view, ledger_rows, list_attempts, newest_rows
from notifier.models import Delivery, DeliveryState
from notifier.producer import Producer
from notifier.redelivery import redeliver, redeliver_one

router = APIRouter(prefix=PREFIX + "/{uuid}", tags=["deliveries"])



def encode_cursor(delivery: Delivery) -> str:
    """An opaque cursor pointing just after ``delivery`` (full-precision time, not the view's)."""
    raw = json.dumps([delivery.created_at.isoformat(), delivery.id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> Position:
    """The (created_at, id) a cursor holds; 400 for anything this API did not make."""
    try:
        created, delivery_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        after = datetime.fromisoformat(created)
    except (binascii.Error, UnicodeError, ValueError, TypeError):
        raise ApiError(400, "Invalid cursor: pass back a next_cursor of this call") from None
    if after.tzinfo is None or not isinstance(delivery_id, str):
        raise ApiError(400, "Invalid cursor: pass back a next_cursor of this call")
    return after, delivery_id


def notification_delivery(delivery_id: str, notification: AdminNotification,
                          session: SessionDep) -> Any:
    """The (delivery, event name, repository) row of the path's notification; 404 otherwise."""
    row = session.execute(ledger_rows().where(
        Delivery.id == delivery_id, Delivery.notification_uuid == notification.uuid)).first()
    if row is None:
        raise NotFound(f"no delivery {delivery_id} of notification {notification.uuid}")
    return row


NotificationDelivery = Annotated[Any, Depends(notification_delivery)]


def commit_then_enqueue(session: Session, producer: Producer, refs: Iterable[DeliveryRef]) -> None:
    """Commit the redelivery, then hand its deliveries to the broker.

    The request's session would commit only when the handler returns; enqueuing before that
    would let a fast worker find the delivery still ``failed`` and drop the message. Committing
    here, first, also means a broker failure reaches the caller (503) instead of vanishing
    after a 202. Nothing touches the session afterwards.
    """
    session.commit()
    try:
        producer.enqueue_deliveries(refs)
    except BrokerUnavailable as exc:
        raise ApiError(503, f"{exc}. The redelivery is saved: the deliveries are pending and the "
                            "scheduler enqueues them again once the broker answers") from None


@router.get("/deliveries")
def list_notification_deliveries(
        notification: AdminNotification, session: SessionDep,
        state: DeliveryState | None = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> dict:
    """A page of the notification's deliveries, newest first; ``next_cursor`` is null at the end."""
    before = decode_cursor(cursor) if cursor else None
    rows = newest_rows(session, notification_uuid=notification.uuid,
                       state=state.value if state else None, before=before, limit=limit + 1)
    page = rows[:limit]
    return {"deliveries": [delivery_view(*row) for row in page],
            "next_cursor": encode_cursor(page[-1][0]) if len(rows) > limit else None}


@router.get("/deliveries/{delivery_id}")
def get_notification_delivery(row: NotificationDelivery, session: SessionDep) -> dict:
    """One delivery with its attempts, in order: here ``attempts`` is the list of them (number,
    start, duration, status code or error, the start of the response), not their count."""
    return {**delivery_view(*row), "attempts": list_attempts(session, row[0].id)}


@router.post("/deliveries/{delivery_id}/redeliver", status_code=202)
def redeliver_notification_delivery(row: NotificationDelivery, session: SessionDep,
                                    producer: ProducerDep, settings: SettingsDep,
                                    principal: PrincipalDep) -> dict:
    """Send a failed or skipped delivery again (same id, so the same ``webhook-id``).

    429 past the hourly limit of redeliveries per requester."""
    _count_redelivery(session, settings, principal)
    commit_then_enqueue(session, producer, redeliver_one(session, row[0]))
    return {}


@router.post("/redeliver", status_code=202)
def redeliver_notification(notification: AdminNotification, session: SessionDep,
                           producer: ProducerDep, settings: SettingsDep,
                           principal: PrincipalDep,
                           body: Annotated[Redelivery | None, Body()] = None) -> dict:
    """Send the notification's failed and skipped deliveries again (``since`` a time, if given).

    The body is optional; ``count`` says how many deliveries went back to the queue: the
    oldest ``NOTIFIER_REDELIVERY_MAX_DELIVERIES`` at most (call again for more). 429 past the
    hourly limit of redeliveries per requester.
    """
    body = body or Redelivery()
    _count_redelivery(session, settings, principal)
    refs = redeliver(session, notification.uuid, since=body.since, states=body.states,
                     max_count=settings.redelivery_max_deliveries)
    commit_then_enqueue(session, producer, refs)
    return {"count": len(refs)}


def _count_redelivery(session: Session, settings: Settings, principal: Principal) -> None:
    rate_limit(session, "redeliveries asked for by one user",
               settings.redeliveries_per_requester_per_hour, principal.name)
