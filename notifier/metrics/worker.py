"""What worker processes record: one counter or histogram per thing on-call asks about."""

from __future__ import annotations

import threading
from datetime import datetime

from notifier.delivery import Outcome
from notifier.models import DeliveryState, utcnow

ATTEMPT_OUTCOMES = ("delivered", "retrying", "failed", "skipped", "busy")
ATTEMPT_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)
FANOUT_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


def attempt_outcome(outcome: Outcome) -> str | None:
    """The ``outcome`` label for what a delivery task did; None when it did nothing (a
    duplicate message, a delivery already gone)."""
    if outcome.waiting_for_endpoint:
        return "busy"
    if outcome.state == DeliveryState.SKIPPED.value and not outcome.ran:
        return "skipped"
    if outcome.ran and outcome.state in ("delivered", "retrying", "failed"):
        return outcome.state
    return None


class WorkerMetrics:
    """The worker series. Built once per process (after any fork), on first use."""

    def __init__(self, registry=None):
        from prometheus_client import REGISTRY, Counter, Gauge, Histogram

        registry = registry or REGISTRY
        self.attempts = Counter(
            "notifier_attempts", "Delivery task outcomes: delivered, retrying, failed, "
            "skipped (notification disabled), busy (endpoint full, waiting; no attempt made).",
            ["method", "outcome"], registry=registry)
        self.attempt_duration = Histogram(
            "notifier_attempt_duration_seconds", "Time one attempt spent sending.",
            ["method"], buckets=ATTEMPT_BUCKETS_S, registry=registry)
        self.delivery_latency = Histogram(
            "notifier_delivery_latency_seconds",
            "From the event recorded by fan-out to its delivery delivered.",
            ["method"], buckets=LATENCY_BUCKETS_S, registry=registry)
        self.events = Counter("notifier_events", "Events fanned out.", ["event"],
                              registry=registry)
        self.fanout_duration = Histogram(
            "notifier_fanout_duration_seconds", "Time to record one event and its deliveries.",
            buckets=FANOUT_BUCKETS_S, registry=registry)
        self.worker_up = Gauge(
            "notifier_worker_up", "1 for each queue this worker process group consumes.",
            ["queue"], multiprocess_mode="max", registry=registry)

    def record_outcome(self, outcome: Outcome, method: str, now: datetime | None = None) -> None:
        label = attempt_outcome(outcome)
        if label is None:
            return
        self.attempts.labels(method=method, outcome=label).inc()
        if outcome.ran and outcome.duration_s is not None:
            self.attempt_duration.labels(method=method).observe(outcome.duration_s)
        if label == "delivered" and outcome.event_recorded_at is not None:
            latency_s = ((now or utcnow()) - outcome.event_recorded_at).total_seconds()
            self.delivery_latency.labels(method=method).observe(max(latency_s, 0.0))

    def record_fan_out(self, event: str, duration_s: float) -> None:
        self.events.labels(event=event).inc()
        self.fanout_duration.observe(duration_s)


_lock = threading.Lock()
_metrics: WorkerMetrics | None = None


def worker_metrics() -> WorkerMetrics:
    """This process's worker metrics."""
    global _metrics
    with _lock:
        if _metrics is None:
            _metrics = WorkerMetrics()
        return _metrics
