"""GET /metrics of the API: the fleet's gauges from the database and the broker, open by
default, behind NOTIFIER_METRICS_TOKEN when set, cached for NOTIFIER_METRICS_CACHE_S."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from pydantic import SecretStr
from prometheus_client.parser import text_string_to_metric_families

from notifier.api import create_app
from notifier.db import transaction
from notifier.fanout import DeliveryRef
from notifier.heartbeat import SCHEDULER, beat
from notifier.metrics.fleet import FleetCollector, database_snapshot
from notifier.models import Delivery, Event, Notification, utcnow
from tests.api_support import api_settings
from tests.conftest import REDIS_SERVER, create_database, drop_database

METRICS_TOKEN = "metrics-token-0123456789abcdef"


def _gauges(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _add_deliveries(factory, *states_and_due: tuple[str, timedelta | None]) -> None:
    now = utcnow()
    with transaction(factory) as session:
        notification = Notification(repository="acme/web", event="repo_push", method="webhook",
                                    config={"url": "https://hooks.example.com/"}, enabled=False)
        event = Event(id=str(uuid.uuid4()), repository="acme/web", name="repo_push", payload={},
                      published_at=now, recorded_at=now)
        session.add_all([notification, event])
        session.flush()
        for state, due_ago in states_and_due:
            session.add(Delivery(id=str(uuid.uuid4()), event_id=event.id, method="webhook",
                                 notification_uuid=notification.uuid, state=state,
                                 next_attempt_at=now - due_ago if due_ago is not None else None,
                                 enqueued_at=now if state == "pending" else None))
        beat(session, SCHEDULER, now - timedelta(seconds=7))


def test_metrics_serve_the_fleet_gauges_without_a_token(api):
    factory = api.client.app.state.factory
    _add_deliveries(factory, ("pending", None), ("retrying", timedelta(seconds=90)),
                    ("retrying", timedelta(seconds=-600)), ("delivered", None))
    api.client.app.state.producer().enqueue_deliveries(  # no worker here: they stay queued
        [DeliveryRef(str(uuid.uuid4()), "webhook", "n", "repo_push", "acme/web")] * 2)

    answer = api.client.get("/metrics")

    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    found = _gauges(answer.text)
    assert {state: found[("notifier_deliveries_waiting", (("state", state),))]
            for state in ("pending", "delivering", "retrying")} == \
        {"pending": 1, "delivering": 0, "retrying": 2}
    assert 90 <= found[("notifier_oldest_due_delivery_age_seconds", ())] < 200
    assert found[("notifier_notifications_disabled", ())] == 1
    assert abs(found[("notifier_scheduler_last_run_timestamp_seconds", ())]
               - (utcnow().timestamp() - 7)) < 60
    assert found[("notifier_queue_length", (("queue", "notifier.delivery"),))] == 2
    assert found[("notifier_queue_length", (("queue", "notifier.fanout"),))] == 0
    assert "acme" not in answer.text  # no repository label, ever


def test_metrics_want_the_token_when_one_is_set(api_template, redis_db):
    template, _ = api_template
    database = create_database("notifier_api", template=template)
    settings = api_settings(database, f"{REDIS_SERVER}/{redis_db}").model_copy(
        update={"metrics_token": SecretStr(METRICS_TOKEN)})
    app = create_app(settings)
    try:
        client = TestClient(app)
        refused = client.get("/metrics")
        assert refused.status_code == 401
        assert "NOTIFIER_METRICS_TOKEN" in refused.json()["error_message"]
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        allowed = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert allowed.status_code == 200 and "notifier_deliveries_waiting" in allowed.text
    finally:
        app.state.engine.dispose()
        drop_database(database)


def test_a_snapshot_is_reused_until_it_is_older_than_the_cache_time(factory):
    now = [100.0]
    taken = []

    def take():
        with factory() as session:
            taken.append(database_snapshot(session))
        return taken[-1]

    collector = FleetCollector(take, max_age_s=5, clock=lambda: now[0])
    first = collector.snapshot()
    now[0] += 4.9
    assert collector.snapshot() is first and len(taken) == 1
    now[0] += 0.2
    assert collector.snapshot() is not first and len(taken) == 2
