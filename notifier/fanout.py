"""Fan-out: record an event once and create one delivery per notification it concerns."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from notifier.db import (all_rows, dialect_name, insert_ignore_rows, unnest_insert,
                         unnest_params)
from notifier.delivery import Policy, wait_until
from notifier.events import build_event_data, get_event, validate_event
from notifier.methods import get_method
from notifier.models import (Delivery, DeliveryState, EndpointSlot, Event, Notification, still_in,
                             utcnow)
from notifier.pacing import take_tickets

DELIVERY_ID_NAMESPACE = uuid.UUID("6f0c5b8e-2d55-4c7e-9a53-3c1f0e8b9a10")
DISABLED_REASON = "notification disabled"


@dataclass(frozen=True)
class DeliveryRef:
    """What the broker carries for one delivery: its id, plus words for Flower."""

    id: str
    method: str
    notification_uuid: str
    event: str
    repository: str

    def describe(self) -> str:
        return (f"{self.method} {self.repository} {self.event} "
                f"notification={self.notification_uuid} delivery={self.id}")


def delivery_id(event_id: str, notification_uuid: str) -> str:
    """The same (event, notification) always gives the same delivery id."""
    return str(uuid.uuid5(DELIVERY_ID_NAMESPACE, f"{event_id}\n{notification_uuid}"))


def event_message(repository: str, event: str, data: dict[str, Any], performer: dict[str, Any],
                  event_id: str, published_at: datetime,
                  test_notification: str | None = None) -> dict[str, Any]:
    """The fan-out task's one argument; ``test_notification`` aims a test at one notification."""
    message = {"event_id": event_id, "repository": repository, "event": event, "data": data,
               "performer": performer, "published_at": published_at.isoformat()}
    if test_notification:
        message["test_notification"] = test_notification
    return message


def fan_out(db: Session | Connection, message: dict[str, Any], *, server_hostname: str,
            scheme: str, policy: Policy | None = None) -> list[DeliveryRef]:
    """Record the event and its deliveries; returns the pending ones, to enqueue after commit.

    With ``policy``, a delivery to a paced endpoint (its attempts time out) that is full waits
    in the database from the start, as a refused claim would, instead of costing a task run.
    Running it twice for one event id creates nothing new and returns the still-pending
    deliveries again (a duplicate message for them is harmless: a delivery is claimed once).
    On PostgreSQL the event, its deliveries and their endpoints' slot rows go in as one
    statement (atomic by itself: ``db`` may be in autocommit), after the read of the
    notifications; on SQLite as statements of the caller's transaction.
    """
    repository, event = message["repository"], message["event"]
    data = validate_event(repository, event, message.get("data"))
    now = utcnow()
    event_row = {
        "id": message["event_id"], "repository": repository, "name": event,
        "payload": build_event_data(repository, event, data, server_hostname=server_hostname,
                                    scheme=scheme),
        "performer": message.get("performer") or {},
        "published_at": datetime.fromisoformat(message["published_at"]), "recorded_at": now,
    }
    test_of = message.get("test_notification")
    event_type = get_event(event)
    found = all_rows(db, _notifications(bool(test_of)), {
        "repository": repository, "event": event, **({"uuid": test_of} if test_of else {})})
    rows = [_delivery_row(message["event_id"], n, now, is_test=bool(test_of))
            for n in found if test_of or event_type.passes(n["event_config"], data)]
    if rows and policy is not None and found[0]["paced_and_full"]:
        _park_at_paced_endpoints(db, rows, now, policy)
    # The claim counts attempts in flight on its endpoint's slot row.
    slots = [{"endpoint": endpoint} for endpoint in sorted({row["endpoint"] for row in rows
                                                            if row["endpoint"]})]
    if dialect_name(db) == "postgresql":
        event_keys, keys = tuple(event_row), tuple(rows[0]) if rows else _DELIVERY_KEYS
        pending = all_rows(db, _record_all(event_keys, keys), {
            **unnest_params(Event.__table__, event_keys, [event_row], "e_"),
            **unnest_params(Delivery.__table__, keys, rows, "d_"),
            **unnest_params(EndpointSlot.__table__, ("endpoint",), slots, "s_"),
            "event_id": message["event_id"]})
    else:
        insert_ignore_rows(db, Event.__table__, [event_row])
        if rows:
            insert_ignore_rows(db, Delivery.__table__, rows)
        if slots:
            insert_ignore_rows(db, EndpointSlot.__table__, slots)
        pending = all_rows(db, _pending(), {"event_id": message["event_id"]})
    return [DeliveryRef(row["id"], row["method"], row["notification_uuid"], event, repository)
            for row in pending]


def _park_at_paced_endpoints(db: Session | Connection, rows: list[dict[str, Any]], now: datetime,
                             policy: Policy) -> None:
    """Rows to a paced, full endpoint wait (``retrying``) for its next wait tickets."""
    counts = Counter(row["endpoint"] for row in rows
                     if row["endpoint"] and row["state"] == DeliveryState.PENDING.value)
    tickets = take_tickets(db, dict(counts), now.timestamp(),
                           policy.max_in_flight_per_endpoint, paced_and_full=True)
    for row in rows:
        waiting = tickets.get(row["endpoint"])
        if waiting and row["state"] == DeliveryState.PENDING.value:
            row.update(state=DeliveryState.RETRYING.value, enqueued_at=None,
                       next_attempt_at=wait_until(now, waiting.pop(0), policy))


@lru_cache(maxsize=2)
def _notifications(test: bool):
    """The notifications an event concerns (a test: the one it aims at). Statements here are
    built once: building and walking a statement costs more CPU than running it."""
    query = select(*_NOTIFICATION_COLUMNS, _paced_and_full()).where(
        Notification.repository == bindparam("repository"),
        Notification.event == bindparam("event"))
    return query.where(Notification.uuid == bindparam("uuid")) if test else query


def _paced_and_full():
    """How many endpoints (anyone's) are paced and full: almost always none, and then fan-out
    parks nothing and takes no wait tickets (an index holds the paced ones, migration 0011)."""
    slots = EndpointSlot.__table__.c
    return (select(func.count()).where(slots.slow_limit.is_not(None),
                                       slots.in_flight >= slots.slow_limit)
            .scalar_subquery().label("paced_and_full"))


@lru_cache(maxsize=1)
def _pending():
    return select(*_REF_COLUMNS).where(Delivery.event_id == bindparam("event_id"),
                                       still_in(DeliveryState.PENDING))


@lru_cache(maxsize=4)
def _record_all(event_keys: tuple[str, ...], delivery_keys: tuple[str, ...]):
    """PostgreSQL: insert the event, its deliveries and their endpoints' slot rows (each
    skipping what exists) and return the pending deliveries: those inserted now and, when the
    event was fanned out before, those still pending from then (the statement's snapshot does
    not see its own inserts, so nothing comes twice)."""
    event = unnest_insert(Event.__table__, event_keys, "e_").cte("event")
    # Slot rows mostly exist, locked by claims and records: look before inserting.
    slots = unnest_insert(EndpointSlot.__table__, ("endpoint",), "s_",
                          missing_only=True).cte("slots")
    added = (unnest_insert(Delivery.__table__, delivery_keys, "d_")
             .returning(*_REF_COLUMNS, Delivery.state).cte("added"))
    new = select(*(added.c[column.key] for column in _REF_COLUMNS)).where(
        added.c.state == DeliveryState.PENDING.value)
    return new.union_all(_pending()).add_cte(event, slots)


_REF_COLUMNS = (Delivery.id, Delivery.method, Delivery.notification_uuid)
# The deliveries' columns when an event concerns no notification (none is inserted).
_DELIVERY_KEYS = ("id", "event_id", "notification_uuid", "method", "endpoint", "state",
                  "attempts", "enqueued_at", "last_error", "is_test", "created_at",
                  "next_attempt_at")
# What a delivery row needs of its notification (columns, not ORM objects: no identity map).
_NOTIFICATION_COLUMNS = (Notification.uuid, Notification.repository, Notification.method,
                         Notification.config, Notification.event_config, Notification.enabled)


def _delivery_row(event_id: str, notification: dict[str, Any], now: datetime, *,
                  is_test: bool) -> dict[str, Any]:
    enabled = notification["enabled"] or is_test  # an admin's test goes out even when disabled
    return {
        "id": delivery_id(event_id, notification["uuid"]),
        "event_id": event_id,
        "notification_uuid": notification["uuid"],
        "method": notification["method"],
        "endpoint": get_method(notification["method"]).delivery_endpoint(
            notification["config"], notification["repository"]),
        "state": (DeliveryState.PENDING if enabled else DeliveryState.SKIPPED).value,
        "attempts": 0,
        "enqueued_at": now if enabled else None,
        "last_error": None if enabled else DISABLED_REASON,
        "is_test": is_test,
        "created_at": now,
        "next_attempt_at": None,
    }
