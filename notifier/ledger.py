"""Reading the delivery ledger: deliveries and their attempts, newest first; and ending a
delivery that could not be attempted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, and_, or_, select, update
from sqlalchemy.orm import Session

from notifier.errors import InvalidInput, NotFound
from notifier.models import Attempt, Delivery, DeliveryState, Event, Notification, still_in

ERROR_TEXT_MAX = 500


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


Position = tuple[datetime, str]  # (created_at, id) of a delivery: where a page ends


def ledger_rows() -> Select:
    """(delivery, event name, repository) rows: what ``delivery_view`` takes."""
    return select(Delivery, Event.name, Event.repository).join(Event, Event.id == Delivery.event_id)


def newest_rows(session: Session, *, notification_uuid: str | None = None,
                state: str | None = None, before: Position | None = None,
                limit: int = 50) -> list[Row]:
    """Up to ``limit`` ledger rows, newest first (ties by id), strictly after ``before``."""
    query = (ledger_rows().order_by(Delivery.created_at.desc(), Delivery.id.desc())
             .limit(limit))
    if notification_uuid:
        query = query.where(Delivery.notification_uuid == notification_uuid)
    if state:
        query = query.where(Delivery.state == state)
    if before is not None:
        created, delivery_id = before
        # The first condition repeats what the second implies, so that SQLite, too, walks
        # the (notification, created) index instead of scanning the notification's rows.
        query = query.where(Delivery.created_at <= created,
                            or_(Delivery.created_at < created,
                                and_(Delivery.created_at == created, Delivery.id < delivery_id)))
    return list(session.execute(query))


def list_deliveries(session: Session, **criteria: Any) -> list[dict[str, Any]]:
    """Views of ``newest_rows(session, **criteria)``."""
    return [delivery_view(*row) for row in newest_rows(session, **criteria)]


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


def abandon_delivery(session: Session, delivery_id: str, reason: str) -> bool:
    """End a delivery that could not even be attempted (its task raised) as ``failed`` with
    the reason, so no scheduler pass hands it out again; redelivery can send it later. Only a
    pending one: a claimed delivery's attempt is closed by the scheduler. True if it ended."""
    ended = session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, still_in(DeliveryState.PENDING))
        .values(state=DeliveryState.FAILED.value, last_error=reason[:ERROR_TEXT_MAX])
        .execution_options(synchronize_session=False))
    return ended.rowcount == 1


def _newest_of_notification(column, *conditions) -> Any:
    """The newest delivery's ``column`` among a notification's deliveries matching
    ``conditions``: a correlated subquery walking the (notification, created) index."""
    return (select(column).where(Delivery.notification_uuid == Notification.uuid, *conditions)
            .order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(1)
            .correlate(Notification).scalar_subquery())


def notification_health(session: Session, uuids: list[str]) -> dict[str, dict[str, Any]]:
    """For each notification: when it last delivered and last failed (tests aside), the last
    failure's error, and its newest test delivery's id; one bounded query."""
    real = Delivery.is_test.is_(False)
    failed = Delivery.state == DeliveryState.FAILED.value
    rows = session.execute(select(
        Notification.uuid,
        _newest_of_notification(Delivery.delivered_at, real,
                                Delivery.state == DeliveryState.DELIVERED.value),
        _newest_of_notification(Delivery.created_at, real, failed),
        _newest_of_notification(Delivery.last_error, real, failed),
        _newest_of_notification(Delivery.id, Delivery.is_test.is_(True)),
    ).where(Notification.uuid.in_(uuids)))
    return {uuid: {"last_success": success, "last_failure": failure, "last_error": error,
                   "last_test_id": test_id}
            for uuid, success, failure, error, test_id in rows}


def deliveries_with_last_attempt(session: Session, delivery_ids: list[str]
                                 ) -> dict[str, tuple[Delivery, Attempt | None]]:
    """Deliveries by id, each with its latest attempt (for its duration), in one query."""
    rows = session.execute(
        select(Delivery, Attempt).outerjoin(
            Attempt, and_(Attempt.delivery_id == Delivery.id,
                          Attempt.number == Delivery.attempts))
        .where(Delivery.id.in_(delivery_ids)))
    return {delivery.id: (delivery, attempt) for delivery, attempt in rows}


SHORT_ID_MIN = 8  # the command line's tables show a delivery id's first 8 characters


def find_delivery_row(session: Session, delivery_id: str) -> Row:
    """The ledger row of ``delivery_id``, or of the one delivery whose id starts with it
    (at least 8 characters, as tables show them); NotFound or InvalidInput otherwise."""
    row = session.execute(ledger_rows().where(Delivery.id == delivery_id)).first()
    if row is not None:
        return row
    if len(delivery_id) >= SHORT_ID_MIN and all(c in "0123456789abcdef-" for c in delivery_id):
        rows = session.execute(ledger_rows().where(Delivery.id.startswith(delivery_id))
                               .limit(2)).all()
        if len(rows) == 1:
            return rows[0]
        if rows:
            raise InvalidInput(f"delivery id {delivery_id} is ambiguous: give more of it")
    raise NotFound(f"no delivery {delivery_id}; `notifier deliveries` lists them")
