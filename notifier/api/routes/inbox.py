"""In-app notifications (as Quay): the calling user's inbox, one notification, dismissing.

A user sees their own notifications (team notifications are stored per member) and those of the
organizations they administer. An inbox belongs to a person: service tokens get 403.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, StrictBool
from sqlalchemy.orm import Session

from notifier.api.deps import PrincipalDep, SessionDep
from notifier.api.errors import ApiError
from notifier.api.tokens import Principal
from notifier.directory import find_user
from notifier.errors import NotFound
from notifier.inapp import INBOX_LIMIT_MAX, _visible_to, inbox_view, list_inbox, set_dismissed
from notifier.models import InAppNotification

router = APIRouter(prefix="/api/v1/user/notifications", tags=["in-app notifications"])


def require_user(principal: PrincipalDep) -> Principal:
    """The calling user; 403 for a service token."""
    if principal.is_service:
        raise ApiError(403, "This call needs a user's token", "insufficient_scope")
    return principal


UserDep = Annotated[Principal, Depends(require_user)]


class DismissRequest(BaseModel):
    """``{"dismissed": true|false}``."""

    model_config = ConfigDict(extra="forbid")

    dismissed: StrictBool


@router.get("")
def list_user_notifications(
        session: SessionDep, user: UserDep,
        page: Annotated[int, Query(description="page number from 1 (0 is read as 1, as Quay)")] = 1,
        limit: Annotated[int, Query(description=f"page size, 1 to {INBOX_LIMIT_MAX}")] = 50,
) -> dict[str, Any]:
    """The caller's notifications, newest first; ``additional`` tells whether more pages follow."""
    rows, additional = list_inbox(session, user.name, page=page or 1, limit=limit)
    return {"notifications": rows, "additional": additional}


@router.get("/{notification_id}")
def get_user_notification(notification_id: str, session: SessionDep,
                          user: UserDep) -> dict[str, Any]:
    """One notification the caller sees; 404 for any other."""
    return visible_notification(session, user.name, notification_id)


@router.put("/{notification_id}")
def update_user_notification(notification_id: str, body: DismissRequest, session: SessionDep,
                             user: UserDep) -> dict[str, Any]:
    """Dismiss (or restore) one notification the caller sees; answers it; 404 for any other."""
    return set_dismissed(session, user.name, notification_id, body.dismissed)


def visible_notification(session: Session, user_name: str, notification_id: str
                         ) -> dict[str, Any]:
    """The view of one notification ``user_name`` sees; NotFound otherwise."""
    # notifier.inapp has no public single-row reader yet; share its visibility rule, not copy it.
    found = session.execute(_visible_to(find_user(session, user_name))
                            .where(InAppNotification.uuid == notification_id)).first()
    if found is None:
        raise NotFound(f"no notification {notification_id}")
    return inbox_view(*found)
