"""Quay's repository-notification calls, and ours to read or rotate a webhook's signing secret.

Every call is for the repository's admins only. Quay's list and create paths end in ``/``; both
forms are registered, since FastAPI would answer the other form with a redirect (which many
clients do not follow for a POST).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from sqlalchemy.orm import Session

from notifier.api.deps import (
    PrincipalDep,
    ProducerDep,
    SessionDep,
    SettingsDep,
    rate_limit,
    require_repository_admin,
)
from notifier.api.errors import ApiError
from notifier.api.models import NotificationCreate, NotificationUpdate
from notifier.errors import NotFound
from notifier.methods.webhook import rotated
from notifier.models import Notification, utcnow
from notifier.netpolicy import parse_networks
from notifier.notifications import (
    create_notification,
    delete_notification,
    get_notification,
    last_deliveries,
    list_notifications,
    notification_view,
    reset,
    send_test,
    update_notification,
)

PREFIX = "/api/v1/repository/{repository:path}/notification"

router = APIRouter(prefix=PREFIX, tags=["notifications"])


def admin_repository(repository: str, session: SessionDep, principal: PrincipalDep) -> str:
    """The path's repository, once the caller is known to be one of its admins (else 403)."""
    require_repository_admin(session, principal, repository)
    return repository


AdminRepository = Annotated[str, Depends(admin_repository)]


def admin_notification(uuid: str, repository: AdminRepository,
                       session: SessionDep) -> Notification:
    """The notification ``uuid`` of the path's repository, for one of its admins.

    A uuid of another repository answers exactly as one that does not exist (404), so an admin
    of one repository learns nothing about another's notifications.
    """
    notification = get_notification(session, uuid)
    if notification.repository != repository:
        raise NotFound(f"no notification {uuid}")
    return notification


AdminNotification = Annotated[Notification, Depends(admin_notification)]


def _view(session: Session, notification: Notification) -> dict:
    """The view of one notification, with its newest delivery."""
    last = last_deliveries(session, [notification.uuid]).get(notification.uuid)
    return notification_view(notification, last)


@router.get("/")
@router.get("", include_in_schema=False)
def list_repository_notifications(repository: AdminRepository, session: SessionDep) -> dict:
    """The repository's notifications, oldest first, with their secrets masked."""
    found = list_notifications(session, repository)
    last = last_deliveries(session, [n.uuid for n in found])
    return {"notifications": [notification_view(n, last.get(n.uuid)) for n in found]}


@router.post("/", status_code=201)
@router.post("", status_code=201, include_in_schema=False)
def create_repository_notification(body: NotificationCreate, repository: AdminRepository,
                                   session: SessionDep, settings: SettingsDep) -> dict:
    """Add a notification; 400 with Quay's message when the event, method or config is wrong."""
    notification = create_notification(
        session, repository, body.event, body.method, body.config, body.event_config,
        body.title, allowed_networks=parse_networks(settings.allowed_networks),
        max_per_repository=settings.max_notifications_per_repository)
    return notification_view(notification)


@router.get("/{uuid}")
def get_repository_notification(notification: AdminNotification, session: SessionDep) -> dict:
    """One notification, with its secrets masked."""
    return _view(session, notification)


@router.put("/{uuid}")
def update_repository_notification(body: NotificationUpdate, notification: AdminNotification,
                                   session: SessionDep, settings: SettingsDep) -> dict:
    """Change a notification's title, config and eventConfig, checked as at create (400 with
    the same messages). Event and method stay; a secret sent back masked keeps its value, and a
    webhook's signing secret stays when ``config`` leaves it out."""
    for name in ("event", "method"):
        sent = getattr(body, name)
        if sent is not None and sent != getattr(notification, name):
            raise ApiError(400, f"The {name} of a notification cannot change (it is "
                                f"'{getattr(notification, name)}'): create a new notification")
    update_notification(session, notification, body.config, body.event_config, body.title,
                        allowed_networks=parse_networks(settings.allowed_networks))
    return _view(session, notification)


@router.delete("/{uuid}", status_code=204)
def delete_repository_notification(notification: AdminNotification,
                                   session: SessionDep) -> None:
    """Remove a notification, and its deliveries with it."""
    delete_notification(session, notification)


@router.post("/{uuid}", status_code=204)
def reset_repository_notification(notification: AdminNotification) -> None:
    """Reset the failure count to 0 and enable the notification again."""
    reset(notification)


@router.post("/{uuid}/test")
def test_repository_notification(notification: AdminNotification, producer: ProducerDep,
                                 session: SessionDep, settings: SettingsDep,
                                 principal: PrincipalDep) -> dict:
    """Send the event's sample data to this notification alone, through the normal pipeline.

    Answers at once; the delivery, marked as a test, shows in the ledger once a worker ran it.
    429 past the hourly limit of tests per requester.
    """
    rate_limit(session, "test notifications asked for by one user",
               settings.test_notifications_per_requester_per_hour, principal.name)
    send_test(notification, producer)
    return {}


def _webhook_secret(notification: Notification, response: Response) -> dict:
    response.headers["Cache-Control"] = "no-store"
    return {"secret": notification.config["secret"]}


def _require_webhook(notification: Notification) -> None:
    if notification.method != "webhook":
        raise ApiError(400, f"Notification {notification.uuid} uses method "
                            f"'{notification.method}', which has no signing secret")


@router.get("/{uuid}/secret", tags=["secrets"])
def read_webhook_secret(notification: AdminNotification, response: Response) -> dict:
    """The webhook's signing secret, in clear (the views mask it)."""
    _require_webhook(notification)
    return _webhook_secret(notification, response)


@router.post("/{uuid}/secret", tags=["secrets"])
def rotate_webhook_secret(notification: AdminNotification, response: Response) -> dict:
    """Give the webhook a new signing secret and answer it; the old one signs too for 24 h."""
    _require_webhook(notification)
    notification.config = rotated(notification.config, utcnow())
    return _webhook_secret(notification, response)
