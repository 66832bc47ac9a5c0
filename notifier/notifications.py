"""Creating and finding repository notifications."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from notifier.errors import InvalidNotificationConfig, NotFound
from notifier.events import get_event, sample_data, split_repository
from notifier.methods import CreateContext, get_method
from notifier.models import Delivery, Notification
from notifier.netpolicy import Network

if TYPE_CHECKING:
    from notifier.producer import Producer


def create_notification(session: Session, repository: str, event: str, method: str,
                        config: Any, event_config: Any = None, title: str | None = None, *,
                        allowed_networks: tuple[Network, ...] = (),
                        max_per_repository: int | None = None) -> Notification:
    """Validate and store a notification; raises InvalidInput subclasses with Quay's messages.

    ``max_per_repository``: refuse a repository that already has that many.
    """
    split_repository(repository)
    if max_per_repository is not None:
        _check_room(session, repository, max_per_repository)
    event_type = get_event(event)
    handler = get_method(method)
    if not isinstance(config, dict):
        raise InvalidNotificationConfig("config must be a JSON object")
    if event_config is None:
        event_config = {}
    if not isinstance(event_config, dict):
        raise InvalidNotificationConfig("eventConfig must be a JSON object")
    event_type.validate_event_config(event_config)
    if title is not None and (not isinstance(title, str) or len(title) > 255):
        raise InvalidNotificationConfig("title must be text of at most 255 characters")
    notification = Notification(
        repository=repository, event=event, method=method, title=title,
        config=handler.validate_config(
            config, CreateContext(repository, allowed_networks, session)),
        event_config=event_config,
        number_of_failures=0, enabled=True,
    )
    session.add(notification)
    session.flush()
    return notification


def _check_room(session: Session, repository: str, most: int) -> None:
    count = session.scalar(select(func.count()).select_from(Notification)
                           .where(Notification.repository == repository))
    if count >= most:
        raise InvalidNotificationConfig(
            f"Repository {repository} already has {count} notifications, the most allowed "
            "(NOTIFIER_MAX_NOTIFICATIONS_PER_REPOSITORY); delete one first")


def get_notification(session: Session, uuid: str) -> Notification:
    notification = session.scalars(select(Notification).where(Notification.uuid == uuid)).first()
    if notification is None:
        raise NotFound(f"no notification {uuid}")
    return notification


def send_test(notification: Notification, producer: Producer) -> str:
    """Publish the event's sample data aimed at this notification alone; returns the event id."""
    return producer.publish(notification.repository, notification.event,
                            sample_data(notification.event, notification.event_config),
                            test_notification=notification.uuid)


def reset(notification: Notification) -> None:
    """Quay's reset: the failure count back to 0, and enabled again."""
    notification.number_of_failures = 0
    notification.enabled = True
    notification.disabled_reason = None


def list_notifications(session: Session, repository: str) -> list[Notification]:
    return list(session.scalars(
        select(Notification).where(Notification.repository == repository)
        .order_by(Notification.created_at, Notification.id)))


def last_deliveries(session: Session, uuids: list[str]) -> dict[str, Delivery]:
    """The newest delivery of each notification, in one query."""
    newest = (select(Delivery, func.row_number().over(
        partition_by=Delivery.notification_uuid,
        order_by=(Delivery.created_at.desc(), Delivery.id.desc())).label("rank"))
        .where(Delivery.notification_uuid.in_(uuids)).subquery())
    latest = aliased(Delivery, newest)
    rows = session.scalars(select(latest).where(newest.c.rank == 1))
    return {delivery.notification_uuid: delivery for delivery in rows}


def notification_view(notification: Notification, last: Delivery | None = None) -> dict[str, Any]:
    """Quay's view of a notification (secrets masked), plus ours: enabled, created, last try."""
    return {
        "uuid": notification.uuid,
        "title": notification.title,
        "event": notification.event,
        "method": notification.method,
        "config": get_method(notification.method).masked_config(notification.config),
        "event_config": notification.event_config,
        "number_of_failures": notification.number_of_failures,
        "enabled": notification.enabled,
        "created": notification.created_at.isoformat(timespec="seconds"),
        "last_attempt": last.created_at.isoformat(timespec="seconds") if last else None,
        "last_error": last.last_error if last else None,
    }
