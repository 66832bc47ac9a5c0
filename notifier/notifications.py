"""Creating and finding repository notifications."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.errors import InvalidNotificationConfig, NotFound
from notifier.events import get_event, split_repository
from notifier.methods import CreateContext, get_method
from notifier.models import Notification
from notifier.netpolicy import Network


def create_notification(session: Session, repository: str, event: str, method: str,
                        config: Any, event_config: Any = None, title: str | None = None, *,
                        allowed_networks: tuple[Network, ...] = ()) -> Notification:
    """Validate and store a notification; raises InvalidInput subclasses with Quay's messages."""
    split_repository(repository)
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


def get_notification(session: Session, uuid: str) -> Notification:
    notification = session.scalars(select(Notification).where(Notification.uuid == uuid)).first()
    if notification is None:
        raise NotFound(f"no notification {uuid}")
    return notification
