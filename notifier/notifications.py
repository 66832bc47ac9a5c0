"""Creating, changing and finding repository notifications."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from notifier.errors import InvalidInput, InvalidNotificationConfig, NotFound
from notifier.events import EventType, get_event, sample_data, split_repository
from notifier.methods import CreateContext, Method, get_method
from notifier.models import Delivery, Notification
from notifier.netpolicy import Network

if TYPE_CHECKING:
    from notifier.producer import Producer


def create_notification(session: Session, repository: str, event: str, method: str,
                        config: Any, event_config: Any = None, title: str | None = None, *,
                        allowed_networks: tuple[Network, ...] = (),
                        max_per_repository: int | None = None) -> Notification:
    """Validate and store a notification; raises InvalidInput subclasses with Quay's messages.

    Each error's ``part`` names the input it is about (see ``_part``).
    ``max_per_repository``: refuse a repository that already has that many.
    """
    split_repository(repository)
    if max_per_repository is not None:
        _check_room(session, repository, max_per_repository)
    with _part("event"):
        event_type = get_event(event)
    with _part("method"):
        handler = get_method(method)
    fields = _validated(session, repository, event_type, handler, config, event_config, title,
                        allowed_networks)
    notification = Notification(repository=repository, event=event, method=method,
                                number_of_failures=0, enabled=True, **fields)
    session.add(notification)
    session.flush()
    return notification


def update_notification(session: Session, notification: Notification, config: Any,
                        event_config: Any = None, title: str | None = None, *,
                        allowed_networks: tuple[Network, ...] = ()) -> Notification:
    """Replace a notification's title, config and event config, checked exactly as at create.

    The event and the method stay (a different one is a new notification). A secret sent back
    as the views show it (masked) keeps its stored value, and keys the method carries over
    (a webhook's signing secrets) stay when left out, so an edit never rotates a secret.
    """
    handler = get_method(notification.method)
    if isinstance(config, dict):
        config = _kept_secrets(handler, notification.config, config)
    fields = _validated(session, notification.repository, get_event(notification.event),
                        handler, config, event_config, title, allowed_networks)
    for name, value in fields.items():
        setattr(notification, name, value)
    session.flush()
    return notification


def _kept_secrets(handler: Method, stored: dict[str, Any], config: dict[str, Any]
                  ) -> dict[str, Any]:
    masked = handler.masked_config(stored)
    kept = {key: stored[key] for key in handler.carried_keys
            if key in stored and key not in config}
    for key, value in config.items():
        unchanged = key in stored and value == masked.get(key) and value != stored[key]
        kept[key] = stored[key] if unchanged else value
    return kept


@contextmanager
def _part(name: str) -> Iterator[None]:
    """Tag an InvalidInput raised inside with ``part``: which input its message is about
    (event, method, event_config, config or title), so a form can show it next to the field."""
    try:
        yield
    except InvalidInput as exc:
        exc.part = name
        raise


def _validated(session: Session, repository: str, event_type: EventType, handler: Method,
               config: Any, event_config: Any, title: Any,
               allowed_networks: tuple[Network, ...]) -> dict[str, Any]:
    """The checked title, config and event config of a notification, as stored."""
    with _part("config"):
        if not isinstance(config, dict):
            raise InvalidNotificationConfig("config must be a JSON object")
    if event_config is None:
        event_config = {}
    with _part("event_config"):
        if not isinstance(event_config, dict):
            raise InvalidNotificationConfig("eventConfig must be a JSON object")
        event_type.validate_event_config(event_config)
    with _part("title"):
        if title is not None and (not isinstance(title, str) or len(title) > 255):
            raise InvalidNotificationConfig("title must be text of at most 255 characters")
    with _part("config"):
        stored = handler.validate_config(
            config, CreateContext(repository, allowed_networks, session))
    return {"title": title, "config": stored, "event_config": event_config}


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
    notification.disabled_at = None


def delete_notification(session: Session, notification: Notification) -> None:
    """Remove a notification; its deliveries and their attempts go with it (the database
    cascades)."""
    session.delete(notification)
    session.flush()


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
