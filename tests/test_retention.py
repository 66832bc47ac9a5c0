"""Ledger retention on PostgreSQL and SQLite: finished deliveries past retention go with their
attempts, then events left with none; nothing unfinished or recent is touched."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

from sqlalchemy import func, select

from notifier.db import transaction
from notifier.models import Attempt, Delivery, Event, Notification, utcnow
from notifier.retention import cutoff_for, prune_ledger

OLD = timedelta(days=40)
STATES = ("pending", "delivering", "retrying", "delivered", "failed", "skipped")


def _seed(factory) -> dict[str, str]:
    """One old and one new delivery in every state, two attempts each, one event per delivery,
    plus an old event that never had a delivery; returns {label: delivery or event id}."""
    now = utcnow()
    ids = {}
    with transaction(factory) as session:
        notification = Notification(repository="acme/app", event="repo_push", method="webhook",
                                    config={"url": "https://hooks.example.com/"})
        session.add(notification)
        session.flush()
        for (age, created), state in itertools.product((("old", now - OLD), ("new", now)),
                                                        STATES):
            event = Event(id=str(uuid.uuid4()), repository="acme/app", name="repo_push",
                          payload={}, published_at=created, recorded_at=created)
            delivery = Delivery(id=str(uuid.uuid4()), event_id=event.id,
                                notification_uuid=notification.uuid, method="webhook",
                                state=state, created_at=created)
            session.add(event)
            session.flush()
            session.add(delivery)
            session.flush()
            session.add_all([Attempt(delivery_id=delivery.id, number=n, started_at=created)
                             for n in (1, 2)])
            ids[f"{age} {state}"] = delivery.id
            ids[f"{age} {state} event"] = event.id
        lonely = Event(id=str(uuid.uuid4()), repository="acme/app", name="repo_push",
                       payload={}, published_at=now - OLD, recorded_at=now - OLD)
        session.add(lonely)
        ids["old lonely event"] = lonely.id
    return ids


def _remaining(factory, model, column, wanted) -> set[str]:
    with factory() as session:
        return set(session.scalars(select(column).where(column.in_(wanted))))


def test_prune_deletes_only_old_finished_deliveries_their_attempts_and_orphan_events(factory):
    ids = _seed(factory)

    pruned = prune_ledger(factory, cutoff_for(30), batch=2)

    gone = {f"old {state}" for state in ("delivered", "failed", "skipped")}
    deliveries = {label: ids[label] for label in ids if not label.endswith("event")}
    assert _remaining(factory, Delivery, Delivery.id, deliveries.values()) == \
        {ids[label] for label in deliveries if label not in gone}
    assert _remaining(factory, Attempt, Attempt.delivery_id, deliveries.values()) == \
        {ids[label] for label in deliveries if label not in gone}
    events = {label: ids[label] for label in ids if label.endswith("event")}
    gone_events = {f"{label} event" for label in gone} | {"old lonely event"}
    assert _remaining(factory, Event, Event.id, events.values()) == \
        {ids[label] for label in events if label not in gone_events}
    assert (pruned.deliveries, pruned.attempts, pruned.events, pruned.complete) == (3, 6, 4, True)

    again = prune_ledger(factory, cutoff_for(30), batch=2)
    assert (again.deliveries, again.attempts, again.events) == (0, 0, 0)


def test_prune_stops_when_its_time_budget_is_spent(factory):
    _seed(factory)
    ticks = iter(range(100))

    pruned = prune_ledger(factory, cutoff_for(30), batch=1, budget_s=1.5,
                          clock=lambda: next(ticks))

    assert not pruned.complete and pruned.deliveries == 1
    assert "next run goes on" in pruned.describe()
    with factory() as session:
        left = session.scalar(select(func.count()).select_from(Delivery)
                              .where(Delivery.state.in_(["delivered", "failed", "skipped"]),
                                     Delivery.created_at < cutoff_for(30)))
    assert left == 2
