"""In-app notifications: storing them, a user's inbox, dismissing, and the "notification
disabled" notice for a repository's admins.

A notification is stored for a user, or for an organization (its admins see it). Team
notifications are stored once per member, so a user's own rows already cover their teams.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from notifier.db import insert_ignore
from notifier.directory import find_user, repository_admins
from notifier.errors import InvalidInput, NotFound
from notifier.models import InAppNotification, Notification, Organization, OrganizationAdmin, User

DISABLED_KIND = "notification_disabled"
# Names the synthetic delivery id of one disable event, so a repeated notice adds nothing.
DISABLED_NOTICE_NAMESPACE = uuid.UUID("3b8f1c2e-5a4d-4f6e-9c7b-2d1e0f9a8b76")
INBOX_LIMIT_MAX = 100
INBOX_PAGE_MAX = 100_000  # pages past it would overflow an OFFSET long before they hold anything


def store_notifications(session: Session, recipients: Iterable[User | Organization], *,
                        kind: str, metadata: dict[str, Any], delivery_id: str) -> None:
    """One in-app notification per recipient; storing the same delivery again adds nothing."""
    rows = [{"user_id": r.id if isinstance(r, User) else None,
             "organization_id": r.id if isinstance(r, Organization) else None,
             "recipient": recipient_key(r), "kind": kind, "metadata_": metadata,
             "delivery_id": delivery_id} for r in recipients]
    if rows:
        session.execute(insert_ignore(session, InAppNotification), rows)


def recipient_key(recipient: User | Organization) -> str:
    """``user:<id>`` or ``org:<id>``: unique per delivery, so a retry notifies no one twice."""
    return f"{'user' if isinstance(recipient, User) else 'org'}:{recipient.id}"


def list_inbox(session: Session, user_name: str, *, page: int = 1, limit: int = 50,
               dismissed: bool | None = None) -> tuple[list[dict[str, Any]], bool]:
    """One page of what ``user_name`` sees, newest first, and whether more pages follow
    (only the dismissed, or only the undismissed, ones when ``dismissed`` is given)."""
    if not (isinstance(page, int) and 1 <= page <= INBOX_PAGE_MAX):
        raise InvalidInput(f"page must be a whole number from 1 to {INBOX_PAGE_MAX}")
    if not (isinstance(limit, int) and 1 <= limit <= INBOX_LIMIT_MAX):
        raise InvalidInput(f"limit must be a whole number from 1 to {INBOX_LIMIT_MAX}")
    query = _visible_to(find_user(session, user_name))
    if dismissed is not None:
        query = query.where(InAppNotification.dismissed.is_(dismissed))
    query = (query
             .order_by(InAppNotification.created_at.desc(), InAppNotification.id.desc())
             .offset((page - 1) * limit).limit(limit + 1))
    rows = session.execute(query).all()
    page_rows = [inbox_view(note, organization) for note, organization in rows[:limit]]
    return page_rows, len(rows) > limit


def count_undismissed(session: Session, user_name: str) -> int:
    """How many notifications ``user_name`` sees and has not dismissed (the bell's count)."""
    visible = _visible_to(find_user(session, user_name)).where(
        InAppNotification.dismissed.is_(False)).subquery()
    return session.scalar(select(func.count()).select_from(visible))


def get_inbox_item(session: Session, user_name: str, notification_uuid: str
                   ) -> tuple[InAppNotification, str | None]:
    """One notification ``user_name`` sees, with its organization's name; NotFound otherwise."""
    found = session.execute(_visible_to(find_user(session, user_name))
                            .where(InAppNotification.uuid == notification_uuid)).first()
    if found is None:
        raise NotFound(f"no notification {notification_uuid}")
    return found[0], found[1]


def set_dismissed(session: Session, user_name: str, notification_uuid: str,
                  dismissed: bool) -> dict[str, Any]:
    """Dismiss (or restore) one notification ``user_name`` sees; NotFound for any other."""
    if not isinstance(dismissed, bool):
        raise InvalidInput("dismissed must be true or false")
    note, organization = get_inbox_item(session, user_name, notification_uuid)
    note.dismissed = dismissed
    session.flush()
    return inbox_view(note, organization)


def inbox_view(note: InAppNotification, organization: str | None) -> dict[str, Any]:
    """Quay's shape of one in-app notification."""
    return {"id": note.uuid, "organization": organization, "kind": note.kind,
            "created": note.created_at.isoformat(timespec="seconds"),
            "metadata": note.metadata_, "dismissed": note.dismissed}


def notify_disabled(session: Session, notification: Notification, *,
                    disabled_at: datetime) -> None:
    """Tell every admin of the notification's repository that it was disabled, and why.

    Once per disable event: calling again with the same ``disabled_at`` adds nothing.
    """
    event_key = uuid.uuid5(DISABLED_NOTICE_NAMESPACE,
                           f"{notification.uuid}@{disabled_at.isoformat()}")
    metadata = {"notification_uuid": notification.uuid, "title": notification.title,
                "event": notification.event, "method": notification.method,
                "repository": notification.repository, "reason": notification.disabled_reason}
    store_notifications(session, repository_admins(session, notification.repository),
                        kind=DISABLED_KIND, metadata=metadata, delivery_id=str(event_key))


def _visible_to(user: User) -> Select:
    """The user's own notifications and those of the organizations they administer,
    each with its organization's name (None for a user's own)."""
    administered = select(OrganizationAdmin.organization_id).where(
        OrganizationAdmin.user_id == user.id)
    return (select(InAppNotification, Organization.name)
            .outerjoin(Organization, Organization.id == InAppNotification.organization_id)
            .where(or_(InAppNotification.user_id == user.id,
                       InAppNotification.organization_id.in_(administered))))
