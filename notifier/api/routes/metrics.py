"""Prometheus metrics of the whole fleet, for scrapers: no login unless NOTIFIER_METRICS_TOKEN
is set. Each scrape reads a snapshot at most NOTIFIER_METRICS_CACHE_S old."""

from __future__ import annotations

import hmac
import threading

from fastapi import APIRouter, Request, Response

from notifier.api.errors import ApiError
from notifier.metrics.fleet import FleetCollector, fleet_snapshot

router = APIRouter(tags=["metrics"])
_lock = threading.Lock()


def _registry(app):
    """The app's registry holding its fleet collector, made on the first scrape."""
    from prometheus_client import CollectorRegistry

    with _lock:
        if getattr(app.state, "metrics_registry", None) is None:
            settings = app.state.settings
            queues = [settings.fanout_queue, settings.delivery_queue]
            registry = CollectorRegistry(auto_describe=False)
            registry.register(FleetCollector(
                lambda: fleet_snapshot(app.state.factory, app.state.producer().app, queues),
                max_age_s=settings.metrics_cache_s))
            app.state.metrics_registry = registry
        return app.state.metrics_registry


def _check_token(request: Request) -> None:
    expected = request.app.state.settings.metrics_token
    if expected is None:
        return
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {expected.get_secret_value()}".encode()):
        raise ApiError(401, "Metrics need Authorization: Bearer <NOTIFIER_METRICS_TOKEN>")


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Deliveries waiting, the oldest due one's age, broker queue lengths, notifications
    disabled, the scheduler's last run (Prometheus text format)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    _check_token(request)
    return Response(generate_latest(_registry(request.app)), media_type=CONTENT_TYPE_LATEST)
