"""In-app notifications (as Quay): the calling user's inbox, one notification, dismissing.

A user sees their own notifications (team notifications are stored per member) and those of the
organizations they administer. An inbox belongs to a person: service tokens get 403.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, StrictBool

from notifier.api.deps import SessionDep, UserDep
from notifier.inapp import INBOX_LIMIT_MAX, get_inbox_item, inbox_view, list_inbox, set_dismissed

router = APIRouter(prefix="/api/v1/user/notifications", tags=["in-app notifications"])


class DismissRequest(BaseModel):
    """``{"dismissed": true|false}``."""

    model_config = ConfigDict(extra="forbid")

    dismissed: StrictBool


@router.get("")
@router.get("/", include_in_schema=False)  # answered, not redirected: some clients add a slash
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
    return inbox_view(*get_inbox_item(session, user.name, notification_id))


@router.put("/{notification_id}")
def update_user_notification(notification_id: str, body: DismissRequest, session: SessionDep,
                             user: UserDep) -> dict[str, Any]:
    """Dismiss (or restore) one notification the caller sees; answers it; 404 for any other."""
    return set_dismissed(session, user.name, notification_id, body.dismissed)
