"""On-call's view of a real fleet (PostgreSQL, a local-folder broker, workers serving metrics,
JSON logs, the API and Flower): Flower shows deliveries, not the scheduler; the documented metrics have the
right values; labels stay bounded; every log line is JSON and holds no secret."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from notifier.db import transaction
from notifier.models import Notification
from notifier.supervisor import beat_command, worker_command
from tests.conftest import create_database, drop_database
from tests.fleet import Fleet, free_port, wait_until
from tests.receivers import Receiver

pytestmark = pytest.mark.fleet

PUSH = {"updated_tags": ["latest"]}
IDLE_S = 20
SECRET_TOKEN = "s3cretQueryT0ken77"


class OpsFleet(Fleet):
    """Workers with a metrics port each and JSON logs, started without Celery's banners."""

    def start(self) -> None:
        from notifier.migrate import upgrade

        upgrade(self.engine)
        self.metrics_ports = {"fanout": free_port(), "delivery": free_port()}
        self.start_worker("fanout", self.settings.fanout_queue, concurrency=2)
        self.start_worker("delivery", self.settings.delivery_queue, concurrency=4)
        self.group.start("beat", beat_command(self.workdir / "beat-schedule", quiet=True))

    def start_worker(self, name: str, queue: str, concurrency: int) -> None:
        self._started += 1
        node = f"{name}{self._started}"
        self.group.start(name, worker_command(node, queue, concurrency=concurrency, quiet=True),
                         env={"NOTIFIER_METRICS_PORT": str(self.metrics_ports[name])})
        self.wait_ready(node)

    def worker_metrics(self, name: str) -> dict:
        text = requests.get(f"http://127.0.0.1:{self.metrics_ports[name]}/metrics",
                            timeout=10).text
        return samples(text)


def samples(text: str) -> dict:
    """{(name, frozenset(labels)): value} of a Prometheus text page."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def ops_fleet(tmp_path_factory):
    """PostgreSQL of its own, and a local-folder broker of its own: the session's Redis fleet
    may be running meanwhile, and must not see (or flush) this fleet's queues and events."""
    workdir = tmp_path_factory.mktemp("ops-fleet")
    database = create_database("notifier_ops")
    env = {"NOTIFIER_DATABASE_URL": database,
           "NOTIFIER_BROKER_URL": f"filesystem://{workdir / 'broker'}",
           "NOTIFIER_LOG_FORMAT": "json", "NOTIFIER_MAX_IN_FLIGHT_PER_ENDPOINT": "8",
           "NOTIFIER_METRICS_CACHE_S": "0", "NOTIFIER_METRICS_DIR": str(workdir / "metrics")}
    fleet = OpsFleet(workdir, env)
    try:
        fleet.start()
        fleet.started_at = time.monotonic()
        yield fleet
    finally:
        fleet.stop()
        drop_database(database)


def flower_tasks(flower: str) -> list[dict]:
    """Flower's task list, newest received first."""
    found = requests.get(f"{flower}/api/tasks", params={"sort_by": "-received"}, timeout=10)
    found.raise_for_status()
    return list(found.json().values())


def test_idle_fleet_leaves_flower_empty_and_a_failed_delivery_comes_first(ops_fleet, receiver,
                                                                          unique_repo):
    flower = ops_fleet.start_flower()
    time.sleep(max(0.0, IDLE_S - (time.monotonic() - ops_fleet.started_at)))
    assert [t["name"] for t in flower_tasks(flower)] == []  # 100 scheduler ticks, none shown
    assert "notifier.enqueue_due" not in ops_fleet.log("fanout")  # and not logged at INFO
    assert "enqueue-due" not in ops_fleet.log("beat")

    receiver.statuses = [500]
    notification = ops_fleet.add_notification(unique_repo, receiver.url)
    ops_fleet.producer.publish(unique_repo, "repo_push", PUSH)
    ops_fleet.wait_for_state(notification.uuid, {"failed"})

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        tasks = flower_tasks(flower)
        # The last attempt's task may be listed (sent) before Flower has its failure: wait for
        # that failure itself, not only for three tasks.
        if tasks and tasks[0]["name"] == "notifier.deliver" and tasks[0]["state"] == "FAILURE" \
                and len([t for t in tasks if t["name"] == "notifier.deliver"]) == 3 \
                and "attempt 3 of 3" in (tasks[0].get("exception") or ""):
            break
        time.sleep(0.5)
    first = tasks[0]
    assert (first["name"], first["state"]) == ("notifier.deliver", "FAILURE"), tasks[:3]
    assert f"webhook {unique_repo} repo_push notification={notification.uuid}" in first["args"]
    assert "receiver answered HTTP 500 (attempt 3 of 3); no attempts left" in first["exception"]
    assert "notifier.enqueue_due" not in {t["name"] for t in tasks}
    page = requests.get(f"{flower}/tasks", timeout=10).text
    assert ">args<" in page and ">Exception<" in page  # the arguments text is a column


def test_worker_and_api_metrics_after_real_deliveries(ops_fleet, unique_repo):
    receivers = {name: Receiver() for name in ("ok", "flaky", "down")}
    try:
        receivers["flaky"].statuses = [500, 200]
        receivers["down"].statuses = [500]
        before = ops_fleet.worker_metrics("delivery")
        events_before = ops_fleet.worker_metrics("fanout")
        made = {name: ops_fleet.add_notification(unique_repo, r.url)
                for name, r in receivers.items()}
        off = ops_fleet.add_notification(unique_repo, receivers["ok"].url)
        with transaction(ops_fleet.factory) as session:
            session.execute(update(Notification).where(Notification.uuid == off.uuid)
                            .values(enabled=False))
        ops_fleet.producer.publish(unique_repo, "repo_push", PUSH)
        ops_fleet.wait_for_state(made["ok"].uuid, {"delivered"})
        ops_fleet.wait_for_state(made["flaky"].uuid, {"delivered"})
        ops_fleet.wait_for_state(made["down"].uuid, {"failed"})
        [skipped] = ops_fleet.wait_for_state(off.uuid, {"skipped"})
        ops_fleet.cli("redeliver", skipped.id)  # sent again while disabled: skipped by a worker
        wait_until(lambda: value(ops_fleet.worker_metrics("delivery"), "notifier_attempts_total",
                                  method="webhook", outcome="skipped")
                    > value(before, "notifier_attempts_total", method="webhook",
                            outcome="skipped"))
        after = ops_fleet.worker_metrics("delivery")
    finally:
        for made_receiver in receivers.values():
            made_receiver.close()

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert {outcome: grew("notifier_attempts_total", method="webhook", outcome=outcome)
            for outcome in ("delivered", "retrying", "failed", "skipped", "busy")} == \
        {"delivered": 2, "retrying": 3, "failed": 1, "skipped": 1, "busy": 0}
    assert grew("notifier_attempt_duration_seconds_count", method="webhook") == 6
    assert grew("notifier_delivery_latency_seconds_count", method="webhook") == 2
    assert 0 < grew("notifier_delivery_latency_seconds_sum", method="webhook") < 60
    assert value(after, "notifier_worker_up", queue="notifier.delivery") == 1
    fanout = ops_fleet.worker_metrics("fanout")
    assert value(fanout, "notifier_events_total", event="repo_push") \
        - value(events_before, "notifier_events_total", event="repo_push") == 1
    assert value(fanout, "notifier_fanout_duration_seconds_count") >= 1
    assert value(fanout, "notifier_worker_up", queue="notifier.fanout") == 1

    api = samples(requests.get(f"{ops_fleet.start_api()}/metrics", timeout=10).text)
    assert {state: value(api, "notifier_deliveries_waiting", state=state)
            for state in ("pending", "delivering", "retrying")} == \
        {"pending": 0, "delivering": 0, "retrying": 0}
    assert value(api, "notifier_oldest_due_delivery_age_seconds") == 0
    assert value(api, "notifier_notifications_disabled") >= 1
    assert ("notifier_queue_length", frozenset({("queue", "notifier.delivery")})) in api
    assert time.time() - value(api, "notifier_scheduler_last_run_timestamp_seconds") < 30


def test_labels_stay_bounded_when_500_repositories_deliver(ops_fleet, receiver):
    def series(name: str) -> set:
        return {key for key in ops_fleet.worker_metrics(name) if key[0].startswith("notifier_")}

    repositories = [f"many{i:03d}/repo" for i in range(500)]
    for repository in repositories:
        ops_fleet.add_notification(repository, receiver.url)
    ops_fleet.producer.publish(repositories[0], "repo_push", PUSH)
    receiver.wait_for(1, timeout_s=60)
    before = series("delivery") | series("fanout")
    for repository in repositories[1:]:
        ops_fleet.producer.publish(repository, "repo_push", PUSH)
    receiver.wait_for(500, timeout_s=300)
    after = series("delivery") | series("fanout")
    assert after <= before  # 499 more repositories added no series
    text = "".join(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
                   for port in ops_fleet.metrics_ports.values())
    assert "many" not in text and "127.0.0.1" not in text
    assert len(after) < 150


def test_logs_are_json_lines_with_context_and_no_secret(ops_fleet, receiver, unique_repo):
    receiver.statuses = [500]
    port = receiver.server.server_port
    notification = ops_fleet.add_notification(
        unique_repo, f"http://127.0.0.1:{port}/in?token={SECRET_TOKEN}")
    event_id = ops_fleet.producer.publish(unique_repo, "repo_push", PUSH)
    [delivery] = ops_fleet.wait_for_state(notification.uuid, {"failed"})
    assert SECRET_TOKEN in receiver.requests[0].path

    lines = []
    for name in ("fanout", "delivery", "beat"):
        for line in ops_fleet.log(name).splitlines():
            if line.strip():
                lines.append(json.loads(line))  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    mine = [line for line in lines if line.get("delivery_id") == delivery.id]
    assert [(line["outcome"], line["attempt"], line["level"]) for line in mine] == \
        [("retrying", 1, "WARNING"), ("retrying", 2, "WARNING"), ("failed", 3, "ERROR")]
    assert all(line["event_id"] == event_id and line["notification"] == notification.uuid
               and line["method"] == "webhook" for line in mine)
    everything = json.dumps(lines)
    assert SECRET_TOKEN not in everything
    assert notification.config["secret"] not in everything


def test_prefork_children_are_added_up_in_a_fresh_folder(ops_fleet, unique_repo):
    """A prefork delivery worker: each child writes its own files, the worker serves the sum."""
    ops_fleet.group.kill("delivery", signal.SIGTERM)
    ops_fleet._started += 1
    node = f"prefork{ops_fleet._started}"
    port = ops_fleet.metrics_ports["delivery"] = free_port()
    ops_fleet.group.start("delivery", worker_command(
        node, ops_fleet.settings.delivery_queue, concurrency=2, pool="prefork", quiet=True),
        env={"NOTIFIER_METRICS_PORT": str(port)})
    ops_fleet.wait_ready(node)
    slow = Receiver(delay_s=1.0)  # two attempts at once: both children work
    try:
        notification = ops_fleet.add_notification(unique_repo, slow.url)
        for _ in range(4):
            ops_fleet.producer.publish(unique_repo, "repo_push", PUSH)
        ops_fleet.wait_for_state(notification.uuid, {"delivered"}, count=4, timeout_s=60)
    finally:
        slow.close()
    # Counted just after the record commits: wait for the count, not only the state.
    wait_until(lambda: value(ops_fleet.worker_metrics("delivery"), "notifier_attempts_total",
                              method="webhook", outcome="delivered") >= 4, timeout_s=10)
    found = ops_fleet.worker_metrics("delivery")
    assert value(found, "notifier_attempts_total", method="webhook", outcome="delivered") == 4
    folder = Path(ops_fleet.env["NOTIFIER_METRICS_DIR"]) / f"{node}@{socket.gethostname()}"
    children = {path.stem.rsplit("_", 1)[1] for path in folder.glob("counter_*.db")}
    assert len(children) == 2, sorted(folder.iterdir())



def test_a_full_endpoint_reads_as_waiting_in_flower_not_as_success(redis_fleet, unique_repo):
    """The fleet allows 2 attempts in flight per endpoint: the third delivery waits (RETRY)."""
    import threading

    flower = redis_fleet.start_flower()
    held = Receiver(hold=threading.Event())
    try:
        made = [redis_fleet.add_notification(unique_repo, held.url) for _ in range(3)]
        redis_fleet.producer.publish(unique_repo, "repo_push", PUSH)
        held.wait_for(2)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            mine = [t for t in flower_tasks(flower) if t["name"] == "notifier.deliver"
                    and unique_repo in (t.get("args") or "")]  # the fan-out itself succeeds
            if any(t["state"] == "RETRY" for t in mine):
                break
            time.sleep(0.3)
        waiting = [t for t in mine if t["state"] == "RETRY"]
        assert waiting, mine
        assert "EndpointBusy" in waiting[0]["exception"]
        assert "no attempt used" in waiting[0]["exception"]
        assert not [t for t in mine if t["state"] == "SUCCESS"]  # no delivery done yet
        held.hold.set()
        for notification in made:
            [delivery] = redis_fleet.wait_for_state(notification.uuid, {"delivered"})
            assert delivery.attempts == 1  # waiting cost no attempt
    finally:
        held.close()
