"""Fleet-wide numbers from cheap, indexed queries and the broker: what `notifier status` prints
and what the API serves at ``GET /metrics``."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from notifier.deadletters import count_dead_letters
from notifier.heartbeat import SCHEDULER, last_run
from notifier.models import Delivery, DeliveryState, Notification, utcnow

log = logging.getLogger(__name__)

WAITING_STATES = (DeliveryState.PENDING.value, DeliveryState.DELIVERING.value,
                  DeliveryState.RETRYING.value)


@dataclass
class FleetSnapshot:
    """The state of the whole fleet at ``taken_at``."""

    taken_at: datetime
    waiting: dict[str, int]
    oldest_due_age_s: float
    notifications_disabled: int
    notifications_failing: int
    scheduler_last_run: datetime | None
    queue_lengths: dict[str, int | None] = field(default_factory=dict)
    dead_letters: int | None = None

    def as_dict(self) -> dict[str, Any]:
        last = self.scheduler_last_run
        return {
            "taken_at": self.taken_at.isoformat(timespec="seconds"),
            "deliveries_waiting": self.waiting,
            "oldest_due_delivery_age_s": round(self.oldest_due_age_s, 3),
            "notifications_disabled": self.notifications_disabled,
            "notifications_failing": self.notifications_failing,
            "scheduler_last_run": last.isoformat(timespec="seconds") if last else None,
            "scheduler_last_run_age_s": (round((self.taken_at - last).total_seconds(), 3)
                                         if last else None),
            "queue_lengths": self.queue_lengths,
            "dead_letters": self.dead_letters,
        }


def dead_letter_count(session: Session) -> int | None:
    """How many dead letters are stored: the ``notifier_dead_letters`` gauge (and a line of
    `notifier status`)."""
    return count_dead_letters(session)


def database_snapshot(session: Session, now: datetime | None = None) -> FleetSnapshot:
    """Deliveries waiting by state, the oldest due one's age, notifications disabled or
    failing, the scheduler's last run: each one indexed query (or a small table's count)."""
    now = now or utcnow()
    counts = dict(session.execute(
        select(Delivery.state, func.count()).where(Delivery.state.in_(WAITING_STATES))
        .group_by(Delivery.state)).all())
    oldest_retry = session.scalar(
        select(func.min(Delivery.next_attempt_at))
        .where(Delivery.state == DeliveryState.RETRYING.value, Delivery.next_attempt_at <= now))
    oldest_pending = session.scalar(
        select(func.min(Delivery.enqueued_at))
        .where(Delivery.state == DeliveryState.PENDING.value))
    due_since = [t for t in (oldest_retry, oldest_pending) if t is not None]
    disabled = session.scalar(select(func.count()).select_from(Notification)
                              .where(Notification.enabled.is_(False)))
    failing = session.scalar(select(func.count()).select_from(Notification)
                             .where(Notification.enabled.is_(True),
                                    Notification.number_of_failures > 0))
    return FleetSnapshot(
        taken_at=now,
        waiting={state: counts.get(state, 0) for state in WAITING_STATES},
        oldest_due_age_s=max([(now - t).total_seconds() for t in due_since] + [0.0]),
        notifications_disabled=disabled, notifications_failing=failing,
        scheduler_last_run=last_run(session, SCHEDULER),
        dead_letters=dead_letter_count(session),
    )


def queue_lengths(app, queues: list[str]) -> dict[str, int | None]:
    """Messages waiting in each broker queue (Redis or the local folder); None when the
    broker does not answer. ``app`` is a Celery app, used only for its connection."""
    from kombu.exceptions import ChannelError, KombuError

    lengths: dict[str, int | None] = dict.fromkeys(queues)
    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1)
            channel = connection.default_channel
            for queue in queues:
                try:
                    lengths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
                except ChannelError:  # never declared, or empty on Redis (no key)
                    lengths[queue] = 0
    except (KombuError, OSError) as exc:
        log.warning("broker did not answer for queue lengths: %s", type(exc).__name__)
    return lengths


def workers_per_queue(app, queues: list[str], timeout_s: float) -> dict[str, list[str]]:
    """The workers that answer within ``timeout_s``, by the queues they consume."""
    found: dict[str, list[str]] = {queue: [] for queue in queues}
    try:
        replies = app.control.inspect(timeout=timeout_s).active_queues() or {}
    except Exception as exc:  # noqa: BLE001  (a broker that does not answer: no workers seen)
        log.warning("workers did not answer: %s", type(exc).__name__)
        replies = {}
    for worker, consumed in replies.items():
        for queue in consumed or []:
            found.setdefault(queue.get("name", "?"), []).append(worker)
    return found


def disabled_notifications(session: Session, limit: int) -> list[dict[str, Any]]:
    """The most recently created disabled notifications, with why."""
    rows = session.execute(
        select(Notification.uuid, Notification.repository, Notification.method,
               Notification.disabled_reason)
        .where(Notification.enabled.is_(False))
        .order_by(Notification.created_at.desc()).limit(limit))
    return [dict(row._mapping) for row in rows]


def fleet_snapshot(factory: sessionmaker[Session], app, queues: list[str]) -> FleetSnapshot:
    with factory() as session:
        snapshot = database_snapshot(session)
    snapshot.queue_lengths = queue_lengths(app, queues)
    return snapshot


class FleetCollector:
    """A prometheus-client collector serving a snapshot at most ``max_age_s`` old."""

    def __init__(self, take: Callable[[], FleetSnapshot], max_age_s: float,
                 clock: Callable[[], float] = time.monotonic):
        self.take, self.max_age_s, self.clock = take, max_age_s, clock
        self._lock = threading.Lock()
        self._taken: tuple[float, FleetSnapshot] | None = None

    def snapshot(self) -> FleetSnapshot:
        with self._lock:  # one scrape at a time queries; the others read its answer
            if self._taken is None or self.clock() - self._taken[0] >= self.max_age_s:
                self._taken = (self.clock(), self.take())
            return self._taken[1]

    def collect(self):
        return fleet_families(self.snapshot())


def fleet_families(snapshot: FleetSnapshot) -> list:
    from prometheus_client.core import GaugeMetricFamily

    waiting = GaugeMetricFamily("notifier_deliveries_waiting",
                                "Deliveries not finished, by state.", labels=["state"])
    for state, count in snapshot.waiting.items():
        waiting.add_metric([state], count)
    queues = GaugeMetricFamily("notifier_queue_length", "Messages waiting in a broker queue.",
                               labels=["queue"])
    for queue, length in snapshot.queue_lengths.items():
        if length is not None:
            queues.add_metric([queue], length)
    last = snapshot.scheduler_last_run
    families = [
        waiting,
        GaugeMetricFamily("notifier_oldest_due_delivery_age_seconds",
                          "How long the oldest due delivery (pending, or retrying whose time "
                          "has come) has been waiting; 0 when none is.",
                          value=snapshot.oldest_due_age_s),
        queues,
        GaugeMetricFamily("notifier_notifications_disabled",
                          "Notifications disabled (by failures, a 410, or an admin).",
                          value=snapshot.notifications_disabled),
        GaugeMetricFamily("notifier_notifications_failing",
                          "Enabled notifications whose last deliveries failed.",
                          value=snapshot.notifications_failing),
        GaugeMetricFamily("notifier_scheduler_last_run_timestamp_seconds",
                          "Unix time of the retry scheduler's last run; 0 if it never ran.",
                          value=last.timestamp() if last else 0.0),
    ]
    if snapshot.dead_letters is not None:
        families.append(GaugeMetricFamily("notifier_dead_letters", "Dead letters stored.",
                                          value=snapshot.dead_letters))
    return families
