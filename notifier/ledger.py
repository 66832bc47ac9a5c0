"""Reading the delivery ledger: deliveries and their attempts, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.models import Attempt, Delivery, Event


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def list_deliveries(session: Session, *, notification_uuid: str | None = None,
                    state: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    query = (select(Delivery, Event.name, Event.repository)
             .join(Event, Event.id == Delivery.event_id)
             .order_by(Delivery.created_at.desc(), Delivery.id).limit(limit))
    if notification_uuid:
        query = query.where(Delivery.notification_uuid == notification_uuid)
    if state:
        query = query.where(Delivery.state == state)
    return [delivery_view(d, event, repo) for d, event, repo in session.execute(query)]


def delivery_view(delivery: Delivery, event: str, repository: str) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "event_id": delivery.event_id,
        "event": event,
        "repository": repository,
        "notification": delivery.notification_uuid,
        "method": delivery.method,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "next_attempt_at": _iso(delivery.next_attempt_at),
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "is_test": delivery.is_test,
        "created": _iso(delivery.created_at),
        "delivered": _iso(delivery.delivered_at),
    }


def list_attempts(session: Session, delivery_id: str) -> list[dict[str, Any]]:
    attempts = session.scalars(
        select(Attempt).where(Attempt.delivery_id == delivery_id).order_by(Attempt.number))
    return [{"number": a.number, "started": _iso(a.started_at), "duration_ms": a.duration_ms,
             "status_code": a.status_code, "error_kind": a.error_kind, "error": a.error,
             "response_excerpt": a.response_excerpt} for a in attempts]
