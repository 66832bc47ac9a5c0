"""Rows and reads for the API tests: notifications, events and deliveries put straight into the
API's database, what the database and the broker hold, and the permission table's personas."""

from __future__ import annotations

import base64
import json
import socket
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import redis
from sqlalchemy import select

from notifier.db import transaction
from notifier.models import Attempt, Delivery, Event, Notification
from notifier.netpolicy import parse_networks
from notifier.notifications import create_notification
from tests.api_support import Api, api_settings, make_api

HOOK_URL = "http://127.0.0.1:9/hook"
WEBHOOK = {"event": "repo_push", "method": "webhook", "config": {"url": HOOK_URL}}
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Case:
    """One row of the permission table: who calls, on which repository, and what they get."""

    persona: str
    repository: str
    denied: int | None  # None: allowed

    @property
    def id(self) -> str:
        return f"{self.persona}@{self.repository}"


# api.md: only a repository's admins; no token 401; a token without the right 403.
PERMISSION_TABLE = [
    Case("owner", "alice/app", None),
    Case("org_admin", "acme/web", None),
    Case("team_admin", "acme/web", None),
    Case("owner", "acme/web", 403),
    Case("org_admin", "alice/app", 403),
    Case("team_admin", "alice/app", 403),
    Case("reader", "acme/web", 403),
    Case("service", "acme/web", 403),
    Case("none", "acme/web", 401),
]
DENIED_TYPES = {401: "invalid_token", 403: "insufficient_scope"}
ERROR_KEYS = {"status", "error_message", "error_type", "title", "detail", "type"}


def notification_path(repository: str, uuid_: str | None = None, rest: str = "") -> str:
    base = f"/api/v1/repository/{repository}/notification/"
    return base + (uuid_ or "") + rest


def add_notification(api: Api, repository: str, *, method: str = "webhook",
                     event: str = "repo_push", config: dict | None = None,
                     **fields: Any) -> str:
    """A notification made by the domain (as the API would), then ``fields`` set; its uuid."""
    with transaction(api.client.app.state.factory) as session:
        made = create_notification(session, repository, event, method,
                                   config if config is not None else {"url": HOOK_URL},
                                   allowed_networks=parse_networks(api.settings.allowed_networks))
        for name, value in fields.items():
            setattr(made, name, value)
        return made.uuid


def add_delivery(api: Api, notification_uuid: str, *, state: str = "failed",
                 created_at: datetime = T0, attempts: int = 3,
                 attempt_log: int = 0) -> str:
    """An event and one delivery of it to the notification, as the pipeline records them."""
    event_id, delivery_id = str(uuid.uuid4()), str(uuid.uuid4())
    with transaction(api.client.app.state.factory) as session:
        notification = session.scalars(
            select(Notification).where(Notification.uuid == notification_uuid)).one()
        session.add(Event(id=event_id, repository=notification.repository,
                          name=notification.event, payload={"updated_tags": ["latest"]},
                          published_at=created_at, recorded_at=created_at))
        session.flush()
        session.add(Delivery(id=delivery_id, event_id=event_id,
                             notification_uuid=notification_uuid, method=notification.method,
                             state=state, attempts=attempts, created_at=created_at,
                             last_error="HTTP 500" if state == "failed" else None))
        session.flush()
        for number in range(1, attempt_log + 1):
            session.add(Attempt(delivery_id=delivery_id, number=number,
                                started_at=created_at + timedelta(seconds=number),
                                duration_ms=5, status_code=500, error_kind="http_status",
                                error="HTTP 500", response_excerpt="oops"))
    return delivery_id


def notification_row(api: Api, uuid_: str) -> Notification | None:
    with api.client.app.state.factory() as session:
        return session.scalars(select(Notification).where(Notification.uuid == uuid_)).first()


def delivery_row(api: Api, delivery_id: str) -> Delivery | None:
    with api.client.app.state.factory() as session:
        return session.get(Delivery, delivery_id)


def delivery_states(api: Api, notification_uuid: str) -> dict[str, str]:
    """Delivery id → state, for one notification's deliveries."""
    with api.client.app.state.factory() as session:
        return dict(session.execute(select(Delivery.id, Delivery.state)
                                    .where(Delivery.notification_uuid == notification_uuid)).all())


def queue_length(api: Api, queue: str) -> int:
    """How many messages wait on a broker queue (kombu keeps a Redis list per queue)."""
    with redis.Redis.from_url(api.settings.broker_url) as client:
        return client.llen(queue)


def fanout_messages(api: Api) -> list[dict]:
    """The fan-out task's arguments waiting on the broker (Celery protocol 2, JSON)."""
    with redis.Redis.from_url(api.settings.broker_url) as client:
        raw = client.lrange(api.settings.fanout_queue, 0, -1)
    return [json.loads(base64.b64decode(json.loads(item)["body"]))[0][0] for item in raw]


def snapshot(api: Api) -> dict[str, Any]:
    """Everything a call could change: notifications, deliveries, both queues."""
    with api.client.app.state.factory() as session:
        notifications = sorted(
            (n.uuid, n.repository, repr(n.config), n.number_of_failures, n.enabled,
             n.disabled_reason) for n in session.scalars(select(Notification)))
        deliveries = sorted((d.id, d.state, d.attempts_before_redelivery)
                            for d in session.scalars(select(Delivery)))
    return {"notifications": notifications, "deliveries": deliveries,
            "fanout": queue_length(api, api.settings.fanout_queue),
            "delivery": queue_length(api, api.settings.delivery_queue)}


def assert_error(response, status: int, error_type: str | None = None) -> dict:
    """``response`` is ``status`` in the error shape; returns its body."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ERROR_KEYS and body["status"] == status
    if error_type is not None:
        assert body["error_type"] == error_type
    return body


def assert_denied(api: Api, case: Case, response, before: dict[str, Any]) -> None:
    """A refused call: the right status and error type, and nothing changed."""
    assert_error(response, case.denied, DENIED_TYPES[case.denied])
    if case.denied == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert snapshot(api) == before


@contextmanager
def unreachable_broker(api: Api) -> Iterator[Api]:
    """The same API and database, with a broker URL where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    made = make_api(api_settings(api.settings.database_url, f"redis://127.0.0.1:{port}/0"),
                    api.tokens)
    try:
        yield made
    finally:
        made.client.app.state.engine.dispose()
