"""A known Celery trap (delivery.md): a worker that stays alive but stops consuming after Redis
restarts. Here a private Redis is restarted under running workers, which must go on delivering
without being restarted themselves."""

from __future__ import annotations

import time

import pytest

from tests.private_servers import fleet_on_private_redis

pytestmark = pytest.mark.fleet

PUSH = {"updated_tags": ["latest"]}


def _publish_once_redis_answers(fleet, repository: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fleet.producer.publish(repository, "repo_push", PUSH)
            return
        except Exception:  # noqa: BLE001 - the broker may still be coming back
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_workers_keep_delivering_after_redis_restarts(tmp_path, receiver):
    with fleet_on_private_redis(tmp_path, "notifier_redis_restart") as (fleet, redis):
        notification = fleet.add_notification("restart/repo", receiver.url)
        fleet.producer.publish("restart/repo", "repo_push", PUSH)
        receiver.wait_for(1)
        worker_pids = {name: p.pid for name, p in fleet.group.processes.items()}

        redis.stop()
        time.sleep(2)  # workers notice the broker is gone
        redis.start()
        for _ in range(3):
            _publish_once_redis_answers(fleet, "restart/repo")

        fleet.wait_for_state(notification.uuid, {"delivered"}, count=4, timeout_s=60)
        assert len(receiver.requests) == 4
        assert {name: p.pid for name, p in fleet.group.processes.items()} == worker_pids
        assert fleet.group.exited() == {}
