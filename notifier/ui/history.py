"""One notification's delivery history, a delivery's attempts, redelivery, and the webhook's
signing secret (reveal, rotate)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from notifier.api.deps import ProducerDep, SessionDep
from notifier.api.errors import ApiError
from notifier.api.routes.deliveries import commit_then_enqueue, decode_cursor, encode_cursor
from notifier.errors import InvalidInput, NotFound
from notifier.ledger import ledger_rows, list_attempts, newest_rows
from notifier.methods.webhook import rotated
from notifier.models import Delivery, DeliveryState, Event, utcnow
from notifier.redelivery import REDELIVERABLE, redeliver
from notifier.ui.repository import NOTIFICATION
from notifier.ui.web import (FormDep, PosterDep, UiRoute, ViewerDep, admin_notification,
                             notification_url, redirect, render, repository_url)

router = APIRouter(route_class=UiRoute, include_in_schema=False)

PAGE_SIZE = 50
STATES = [state.value for state in DeliveryState]


@router.get(NOTIFICATION + "/history")
def history(request: Request, repository: str, uuid: str, session: SessionDep,
            viewer: ViewerDep, state: Annotated[str, Query()] = "",
            cursor: Annotated[str, Query()] = "") -> Response:
    """The deliveries, newest first, a page at a time (keyset: a page never shifts)."""
    notification = admin_notification(session, viewer, repository, uuid)
    if state and state not in STATES:
        raise InvalidInput(f"state must be one of {', '.join(STATES)}")
    rows = newest_rows(session, notification_uuid=uuid, state=state or None,
                       before=decode_cursor(cursor) if cursor else None, limit=PAGE_SIZE + 1)
    page = rows[:PAGE_SIZE]
    next_cursor = encode_cursor(page[-1][0]) if len(rows) > PAGE_SIZE else None
    return render(request, "history.html", viewer=viewer, notification=notification,
                  rows=page, state_filter=state, states=STATES, next_cursor=next_cursor,
                  base=notification_url(notification), back=repository_url(repository),
                  first_page=not cursor)


def _parse_since(text: str) -> datetime | None:
    """A ``datetime-local`` value (read as UTC) or an ISO time with a zone; None when empty."""
    if not text.strip():
        return None
    try:
        since = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"Invalid time {text!r}: use YYYY-MM-DDTHH:MM (UTC)") from None
    return since if since.tzinfo else since.replace(tzinfo=timezone.utc)


@router.post(NOTIFICATION + "/redeliver")
def redeliver_since(request: Request, repository: str, uuid: str, form: FormDep,
                    session: SessionDep, viewer: PosterDep, producer: ProducerDep) -> Response:
    """First how many failed/skipped deliveries would go again, then (confirmed) send them."""
    notification = admin_notification(session, viewer, repository, uuid)
    since = _parse_since(form.get("since", ""))
    if not form.get("confirmed"):
        chosen = select(func.count()).select_from(Delivery).where(
            Delivery.notification_uuid == uuid, Delivery.state.in_(REDELIVERABLE))
        if since is not None:
            chosen = chosen.where(Delivery.created_at >= since)
        return render(request, "redeliver.html", viewer=viewer, notification=notification,
                      count=session.scalar(chosen), since=form.get("since", ""),
                      base=notification_url(notification))
    refs = redeliver(session, uuid, since=since)
    commit_then_enqueue(session, producer, refs)
    return redirect(notification_url(notification, f"/history?redelivered={len(refs)}"))


@router.get(NOTIFICATION + "/deliveries/{delivery_id}")
def delivery_page(request: Request, repository: str, uuid: str, delivery_id: str,
                  session: SessionDep, viewer: ViewerDep) -> Response:
    notification = admin_notification(session, viewer, repository, uuid)
    row = session.execute(ledger_rows().where(Delivery.id == delivery_id,
                                              Delivery.notification_uuid == uuid)).first()
    if row is None:
        raise NotFound(f"no delivery {delivery_id} of notification {uuid}")
    payload = session.scalar(select(Event.payload).where(Event.id == row[0].event_id))
    return render(request, "delivery.html", viewer=viewer, notification=notification,
                  delivery=row[0], event=row[1], attempts=list_attempts(session, delivery_id),
                  payload=payload, redeliverable=row[0].state in REDELIVERABLE,
                  base=notification_url(notification))


@router.post(NOTIFICATION + "/deliveries/{delivery_id}/redeliver")
def redeliver_one(repository: str, uuid: str, delivery_id: str, session: SessionDep,
                  viewer: PosterDep, producer: ProducerDep) -> Response:
    notification = admin_notification(session, viewer, repository, uuid)
    refs = redeliver(session, uuid, delivery_ids=[delivery_id])
    if not refs:
        raise ApiError(400, f"Delivery {delivery_id} is not failed or skipped: only those can "
                            "be sent again")
    commit_then_enqueue(session, producer, refs)
    return redirect(notification_url(notification, f"/deliveries/{delivery_id}"))


# --- the webhook's signing secret --------------------------------------------------------------

def _webhook(session, viewer, repository: str, uuid: str):
    notification = admin_notification(session, viewer, repository, uuid)
    if notification.method != "webhook":
        raise InvalidInput(f"Notification {uuid} uses method '{notification.method}', "
                           "which has no signing secret")
    return notification


@router.get(NOTIFICATION + "/secret")
def secret_page(request: Request, repository: str, uuid: str, session: SessionDep,
                viewer: ViewerDep) -> Response:
    notification = _webhook(session, viewer, repository, uuid)
    return render(request, "secret.html", viewer=viewer, notification=notification,
                  secret=None, created=False, rotated=False, back=repository_url(repository))


@router.post(NOTIFICATION + "/secret/reveal")
def reveal_secret(request: Request, repository: str, uuid: str, session: SessionDep,
                  viewer: PosterDep) -> Response:
    notification = _webhook(session, viewer, repository, uuid)
    return render(request, "secret.html", viewer=viewer, notification=notification,
                  secret=notification.config["secret"], created=False, rotated=False,
                  back=repository_url(repository))


@router.post(NOTIFICATION + "/secret/rotate")
def rotate_secret(request: Request, repository: str, uuid: str, session: SessionDep,
                  viewer: PosterDep) -> Response:
    notification = _webhook(session, viewer, repository, uuid)
    notification.config = rotated(notification.config, utcnow())
    return render(request, "secret.html", viewer=viewer, notification=notification,
                  secret=notification.config["secret"], created=False, rotated=True,
                  back=repository_url(repository))
