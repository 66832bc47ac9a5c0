"""A repository's notification settings (Quay's ``/repository/<ns>/<repo>?tab=settings``):
the table, its row actions, and the create and edit form."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from notifier.api.deps import ProducerDep, SessionDep, SettingsDep
from notifier.errors import InvalidInput
from notifier.events import EVENTS
from notifier.ledger import deliveries_with_last_attempt, notification_health
from notifier.methods import METHODS
from notifier.models import Delivery, DeliveryState, Notification
from notifier.netpolicy import parse_networks
from notifier.notifications import (create_notification, reset, send_test,
                                    update_notification)
from notifier.redelivery import redeliver
from notifier.ui import forms, present
from notifier.ui.web import (FormDep, PosterDep, UiRoute, ViewerDep, admin_notification,
                             admin_repository, notification_url, redirect, render,
                             repository_url)

router = APIRouter(route_class=UiRoute, include_in_schema=False)

NOTIFICATIONS_MAX = 500  # a page shows at most this many (Quay has no paging either)
STATE_FILTERS = ("enabled", "disabled")
NOTIFICATION = "/repository/{repository:path}/notification/{uuid}"


def notification_rows(session: Session, repository: str, *, event: str | None = None,
                      state: str | None = None, uuids: list[str] | None = None,
                      awaiting: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The table's rows: each notification with its health and its latest test's result
    (``awaiting`` maps a notification just tested to the event id of that test)."""
    awaiting = awaiting or {}
    query = select(Notification).where(Notification.repository == repository)
    if event:
        query = query.where(Notification.event == event)
    if state in STATE_FILTERS:
        query = query.where(Notification.enabled.is_(state == "enabled"))
    if uuids is not None:
        query = query.where(Notification.uuid.in_(uuids))
    found = list(session.scalars(query.order_by(Notification.created_at, Notification.id)
                                 .limit(NOTIFICATIONS_MAX)))
    health = notification_health(session, [n.uuid for n in found])
    tests = deliveries_with_last_attempt(
        session, [h["last_test_id"] for h in health.values() if h["last_test_id"]])
    skipped = _skipped_counts(session, [n.uuid for n in found if not n.enabled])
    rows = []
    for notification in found:
        info = health.get(notification.uuid, {})
        test = tests.get(info.get("last_test_id"))
        awaited = awaiting.get(notification.uuid)
        rows.append({"n": notification, "health": info,
                     "skipped": skipped.get(notification.uuid, 0), "awaiting": awaited,
                     "test": _test_result(test, awaited), "url": notification_url(notification)})
    return rows


def _skipped_counts(session: Session, uuids: list[str]) -> dict[str, int]:
    if not uuids:
        return {}
    return dict(session.execute(
        select(Delivery.notification_uuid, func.count())
        .where(Delivery.notification_uuid.in_(uuids),
               Delivery.state == DeliveryState.SKIPPED.value)
        .group_by(Delivery.notification_uuid)).all())


def _test_result(found, awaited_event: str | None) -> dict[str, Any] | None:
    """The newest test delivery in words; "sent" while the awaited test has no delivery yet."""
    if found is None:
        return {"state": "sending", "final": False, "text": "Test sent, waiting for a worker…"} \
            if awaited_event else None
    delivery, attempt = found
    if awaited_event and delivery.event_id != awaited_event:
        return {"state": "sending", "final": False, "text": "Test sent, waiting for a worker…"}
    final = delivery.state in (DeliveryState.DELIVERED.value, DeliveryState.FAILED.value,
                               DeliveryState.SKIPPED.value)
    duration = f" in {attempt.duration_ms} ms" if attempt and attempt.duration_ms is not None \
        else ""
    status = f"HTTP {delivery.last_status_code}" if delivery.last_status_code else ""
    if delivery.state == DeliveryState.DELIVERED.value:
        text = f"Test delivered{': ' + status if status else ''}{duration}"
    elif delivery.state in (DeliveryState.PENDING.value, DeliveryState.DELIVERING.value):
        text = "Test being delivered…"
    else:
        text = (f"Test {delivery.state}: {delivery.last_error or status or 'no answer'}"
                + (f" (next attempt {present.when(delivery.next_attempt_at)})"
                   if delivery.state == DeliveryState.RETRYING.value else ""))
    return {"state": delivery.state, "final": final, "text": text,
            "when": present.when(delivery.created_at), "delivery_id": delivery.id}


@router.get("/repository/{repository:path}/notification/{uuid}/row")
def notification_row(request: Request, repository: str, uuid: str, session: SessionDep,
                     viewer: ViewerDep, test_event: Annotated[str | None, Query()] = None
                     ) -> Response:
    """One row of the table (the page polls it after Test until the result is final)."""
    admin_notification(session, viewer, repository, uuid)
    rows = notification_rows(session, repository, uuids=[uuid],
                             awaiting={uuid: test_event} if test_event else None)
    return render(request, "_row.html", viewer=viewer, row=rows[0], repository=repository)


# --- the create and edit form ------------------------------------------------------------------

def _form_page(request: Request, session: Session, viewer, repository: str, *,
               values: dict[str, str], errors: dict[str, str], editing: Notification | None,
               notices: dict[str, str] | None = None, status: int = 200) -> Response:
    method = editing.method if editing else values.get("method", "")
    address = values.get("email.email", "").strip()
    email_state = _email_state(session, repository, address) if address else None
    return render(request, "form.html", status=status, viewer=viewer, repository=repository,
                  values=values, errors=errors, editing=editing, notices=notices or {},
                  events=present.event_choices(), event_kinds={n: e.kind for n, e in EVENTS.items()},
                  methods=[(name, present.method_title(name)) for name in METHODS],
                  method_fields=forms.METHOD_FIELDS, chosen_method=method,
                  severities=forms.severity_choices(), ref_regex_hint=forms.REF_REGEX_HINT,
                  targets=forms.target_choices(session, repository), email_state=email_state)


def _email_state(session: Session, repository: str, address: str) -> str:
    from notifier.email_auth import get_authorization
    from notifier.errors import NotFound
    try:
        record = get_authorization(session, repository, address)
    except NotFound:
        return "unconfirmed"
    except InvalidInput:
        return "invalid"
    return "confirmed" if record.confirmed else "waiting"


@router.get("/repository/{repository:path}/notification/new")
def new_notification_form(request: Request, repository: str, session: SessionDep,
                          viewer: ViewerDep) -> Response:
    admin_repository(session, viewer, repository)
    return _form_page(request, session, viewer, repository,
                      values={"event": "repo_push", "method": "webhook"}, errors={},
                      editing=None)


@router.post("/repository/{repository:path}/notification/new")
def create_from_form(request: Request, repository: str, form: FormDep, session: SessionDep,
                     viewer: PosterDep, settings: SettingsDep) -> Response:
    """Create, or show the form again with each error next to its field (nothing stored)."""
    admin_repository(session, viewer, repository)
    submitted = forms.read_form(form)
    try:
        with session.begin_nested():
            created = create_notification(
                session, repository, submitted.event, submitted.method, submitted.config,
                submitted.event_config, submitted.title,
                allowed_networks=parse_networks(settings.allowed_networks))
    except InvalidInput as exc:
        return _form_page(request, session, viewer, repository, values=submitted.values,
                          errors=forms.field_errors(exc, submitted), editing=None, status=400)
    if created.method == "webhook":
        return render(request, "secret.html", viewer=viewer, notification=created,
                      secret=created.config["secret"], created=True, rotated=False,
                      back=repository_url(repository))
    return redirect(repository_url(repository, created=created.uuid) + f"#n-{created.uuid}")


@router.get(NOTIFICATION + "/edit")
def edit_form(request: Request, repository: str, uuid: str, session: SessionDep,
              viewer: ViewerDep) -> Response:
    notification = admin_notification(session, viewer, repository, uuid)
    return _form_page(request, session, viewer, repository,
                      values=forms.form_values(notification), errors={}, editing=notification)


@router.post(NOTIFICATION + "/edit")
def update_from_form(request: Request, repository: str, uuid: str, form: FormDep,
                     session: SessionDep, viewer: PosterDep, settings: SettingsDep) -> Response:
    notification = admin_notification(session, viewer, repository, uuid)
    submitted = forms.read_form(form, event=notification.event, method=notification.method)
    try:
        with session.begin_nested():
            update_notification(session, notification, submitted.config,
                                submitted.event_config, submitted.title,
                                allowed_networks=parse_networks(settings.allowed_networks))
    except InvalidInput as exc:
        return _form_page(request, session, viewer, repository, values=submitted.values,
                          errors=forms.field_errors(exc, submitted), editing=notification,
                          status=400)
    return redirect(repository_url(repository, updated=uuid) + f"#n-{uuid}")


@router.post("/repository/{repository:path}/notification/email")
def send_email_confirmation(request: Request, repository: str, form: FormDep,
                            session: SessionDep, viewer: PosterDep,
                            settings: SettingsDep) -> Response:
    """The form's "send confirmation" button: the e-mail authorization flow, then the form
    again with what was typed."""
    from notifier.api.routes.emails import get_mailer
    from notifier.email_auth import authorize
    from notifier.errors import DeliveryError

    admin_repository(session, viewer, repository)
    values = dict(form)
    address = values.get("email.email", "").strip()
    errors, notices = {}, {}
    try:
        with session.begin_nested():  # no record without a mail
            record = authorize(session, repository, address, settings=settings,
                               mailer=get_mailer(request))
        notices["email.email"] = (f"{record.email} is already confirmed" if record.confirmed
                                  else f"Confirmation mail sent to {record.email}")
    except InvalidInput as exc:
        errors["email.email"] = str(exc)
    except DeliveryError as exc:
        errors["email.email"] = (f"The confirmation e-mail could not be sent ({exc.kind}): "
                                 "try again later")
    editing = None
    if values.get("editing"):
        editing = admin_notification(session, viewer, repository, values["editing"])
    return _form_page(request, session, viewer, repository, values=values, errors=errors,
                      editing=editing, notices=notices)


@router.get("/repository/{repository:path}/notification/email")
def email_state(request: Request, repository: str, session: SessionDep, viewer: ViewerDep,
                address: Annotated[str, Query()] = "") -> Response:
    """Whether an address is confirmed for the repository (the form polls it)."""
    admin_repository(session, viewer, repository)
    state = _email_state(session, repository, address) if address else "unconfirmed"
    return render(request, "_email_state.html", viewer=viewer, email_state=state)


@router.post("/preview")
def preview_body(request: Request, form: FormDep, viewer: PosterDep) -> Response:
    """The webhook body a template makes of an event's sample data (the form's preview)."""
    from notifier.bodytemplate import compile_template
    from notifier.events import build_event_data, sample_data

    event = form.get("event") if form.get("event") in EVENTS else "repo_push"
    data = build_event_data(form.get("repository") or "namespace/repository", event,
                            sample_data(event), server_hostname=request.app.state.settings
                            .server_hostname, scheme=request.app.state.settings
                            .preferred_url_scheme)
    text = form.get("template", "")
    try:
        body = compile_template(text).apply(data) if text.strip() else data
        preview, error = json.dumps(body, indent=2, ensure_ascii=False), None
    except InvalidInput as exc:
        preview, error = None, str(exc)
    return render(request, "_preview.html", viewer=viewer, preview=preview, error=error)


# --- row actions -------------------------------------------------------------------------------

@router.post(NOTIFICATION + "/test")
def test_notification(repository: str, uuid: str, session: SessionDep, viewer: PosterDep,
                      producer: ProducerDep) -> Response:
    notification = admin_notification(session, viewer, repository, uuid)
    event_id = send_test(notification, producer)
    return redirect(repository_url(repository, tested=uuid, test_event=event_id) + f"#n-{uuid}")


@router.post(NOTIFICATION + "/reset")
def reenable(repository: str, uuid: str, form: FormDep, session: SessionDep,
             viewer: PosterDep, producer: ProducerDep) -> Response:
    """Re-enable; with ``redeliver_skipped``, send again what was skipped while disabled."""
    from notifier.api.routes.deliveries import commit_then_enqueue

    notification = admin_notification(session, viewer, repository, uuid)
    reset(notification)
    if form.get("redeliver_skipped"):
        commit_then_enqueue(session, producer, redeliver(
            session, notification.uuid, states=[DeliveryState.SKIPPED.value]))
    return redirect(repository_url(repository, reenabled=uuid) + f"#n-{uuid}")


@router.get(NOTIFICATION + "/delete")
def confirm_delete(request: Request, repository: str, uuid: str, session: SessionDep,
                   viewer: ViewerDep) -> Response:
    notification = admin_notification(session, viewer, repository, uuid)
    return render(request, "delete.html", viewer=viewer, notification=notification,
                  back=repository_url(repository))


@router.post(NOTIFICATION + "/delete")
def delete_notification(repository: str, uuid: str, session: SessionDep,
                        viewer: PosterDep) -> Response:
    session.delete(admin_notification(session, viewer, repository, uuid))
    return redirect(repository_url(repository, deleted="1"))


# --- the settings tab (registered last: its path takes everything under /repository/) ---------

def settings_page(request: Request, repository: str, session: SessionDep, viewer: ViewerDep,
                  event: Annotated[str | None, Query()] = None,
                  state: Annotated[str | None, Query()] = None) -> Response:
    admin_repository(session, viewer, repository)
    params = request.query_params
    awaiting = {params["tested"]: params["test_event"]} \
        if params.get("tested") and params.get("test_event") else None
    rows = notification_rows(session, repository, event=event or None, state=state or None,
                             awaiting=awaiting)
    return render(request, "repository.html", viewer=viewer, repository=repository, rows=rows,
                  event_filter=event or "", state_filter=state or "",
                  events=present.event_choices(), created=params.get("created"),
                  filtered=bool(event or state))
