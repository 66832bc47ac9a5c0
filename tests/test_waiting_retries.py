"""Retries wait in the database, not in the broker or a worker's memory."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import psutil
import pytest
import redis as redis_lib
from sqlalchemy import delete, insert

from notifier.db import transaction
from notifier.models import Delivery, Event, utcnow

pytestmark = pytest.mark.fleet

WAITING = 10_000
RSS_GROWTH_LIMIT_MB = 15


def _rss_mb(pid: int) -> float:
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20


def _messages_for(fleet, notification_uuid: str) -> tuple[int, int]:
    """The notification's delivery messages in Redis: (queued, taken by a worker but unacked)."""
    client = redis_lib.Redis.from_url(fleet.settings.broker_url)
    queued = [json.loads(raw) for raw in client.lrange(fleet.settings.delivery_queue, 0, -1)]
    unacked = [json.loads(raw)[0] for raw in client.hvals("unacked")]  # [message, exchange, key]

    def count(messages):
        return sum(f"notification={notification_uuid}" in m["headers"].get("argsrepr", "")
                   for m in messages)
    return count(queued), count(unacked)


def _add_waiting_deliveries(fleet, notification_uuid: str, repository: str) -> str:
    now = utcnow()
    event_id = f"waiting-{notification_uuid}"
    rows = [{"id": f"{notification_uuid[:8]}-{n:027d}", "event_id": event_id,
             "notification_uuid": notification_uuid, "method": "webhook", "state": "retrying",
             "attempts": 1, "next_attempt_at": now + timedelta(hours=1), "is_test": False,
             "created_at": now} for n in range(WAITING)]
    with transaction(fleet.factory) as session:
        session.execute(insert(Event).values(
            id=event_id, repository=repository, name="repo_push", payload={}, performer={},
            published_at=now, recorded_at=now))
        session.execute(insert(Delivery), rows)
    return event_id


def test_ten_thousand_waiting_retries_cost_no_worker_memory(redis_fleet, receiver, unique_repo):
    fleet = redis_fleet
    # One real delivery that the receiver asks to wait an hour (Retry-After), ...
    receiver.statuses, receiver.headers = [503], {"Retry-After": "3600"}
    notification = fleet.add_notification(unique_repo, receiver.url)
    fleet.producer.publish(unique_repo, "repo_push", {"updated_tags": ["a"]})
    [real] = fleet.wait_for_state(notification.uuid, {"retrying"})
    assert real.next_attempt_at - utcnow() > timedelta(minutes=59)

    # ... and ten thousand more waiting an hour.
    worker_pid = fleet.group.processes["delivery"].pid
    before_mb = _rss_mb(worker_pid)
    attempts_before = fleet.count_attempts()
    event_id = _add_waiting_deliveries(fleet, notification.uuid, unique_repo)
    try:
        time.sleep(3)  # fifteen scheduler rounds
        assert _messages_for(fleet, notification.uuid) == (0, 0)
        assert fleet.count_attempts() == attempts_before
        assert len(receiver.requests) == 1
        assert _rss_mb(worker_pid) - before_mb < RSS_GROWTH_LIMIT_MB
    finally:
        with transaction(fleet.factory) as session:
            session.execute(delete(Delivery).where(Delivery.event_id == event_id))
            session.execute(delete(Event).where(Event.id == event_id))
