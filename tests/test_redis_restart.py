"""A known Celery trap (delivery.md): a worker that stays alive but stops consuming after Redis
restarts. Here a private Redis is restarted under running workers, which must go on delivering
without being restarted themselves."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import create_database, drop_database, service_missing
from tests.fleet import free_port, running_fleet

pytestmark = pytest.mark.fleet

PUSH = {"updated_tags": ["latest"]}
START_TIMEOUT_S = 10


class PrivateRedis:
    """A redis-server of this test's own on a free loopback port, keeping nothing on disk."""

    def __init__(self, folder: Path):
        binary = shutil.which("redis-server")
        if binary is None:
            service_missing("redis-server", FileNotFoundError("not on PATH"))
        self.port = free_port()
        self.command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", "--dir", str(folder)]
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"redis-server did not listen within {START_TIMEOUT_S} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


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
    redis = PrivateRedis(tmp_path)
    redis.start()
    database = create_database("notifier_redis_restart")
    env = {"NOTIFIER_DATABASE_URL": database, "NOTIFIER_BROKER_URL": redis.url}
    try:
        with running_fleet(tmp_path, env) as fleet:
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
    finally:
        redis.stop()
        drop_database(database)
