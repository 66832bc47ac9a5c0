"""A real fleet for end-to-end tests: fan-out worker, delivery worker and beat as subprocesses,
sharing one database and one broker, started from the test's own environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import requests
from sqlalchemy import func, select

from config import Settings, load_settings
from notifier.db import make_engine, make_session_factory, transaction
from notifier.migrate import upgrade
from notifier.models import Attempt, Delivery, Notification
from notifier.netpolicy import parse_networks
from notifier.notifications import create_notification
from notifier.producer import Producer, client_app
from notifier.supervisor import (ProcessGroup, api_command, beat_command, flower_command,
                                 worker_command)

FLEET_SETTINGS = {
    "NOTIFIER_ALLOWED_NETWORKS": "127.0.0.0/8",
    "NOTIFIER_SERVER_HOSTNAME": "registry.example.com",
    "NOTIFIER_PREFERRED_URL_SCHEME": "https",
    "NOTIFIER_RETRY_SCHEDULE": "0,0.5,1",
    "NOTIFIER_MAX_FAILURES": "3",
    "NOTIFIER_SEND_TIMEOUT_S": "2",
    "NOTIFIER_VISIBILITY_TIMEOUT_S": "10",
    "NOTIFIER_SCHEDULER_INTERVAL_S": "0.2",
    "NOTIFIER_MAX_IN_FLIGHT_PER_ENDPOINT": "2",
    "NOTIFIER_LOG_LEVEL": "INFO",
    "FLOWER_UNAUTHENTICATED_API": "1",  # tests read Flower's task list
    "NOTIFIER_SERVICE_TOKENS": "fleet-service-token-0123456789",
}
READY_TIMEOUT_S = 60


class Fleet:
    """Worker processes plus the handles a test needs: a producer and the ledger."""

    def __init__(self, workdir: Path, env_overrides: dict[str, str]):
        self.workdir = workdir
        self.env = {**os.environ, **FLEET_SETTINGS, **env_overrides}
        self.settings: Settings = load_settings(**{
            key.removeprefix("NOTIFIER_").lower(): value
            for key, value in self.env.items() if key.startswith("NOTIFIER_")})
        self.engine = make_engine(self.settings.database_url)
        self.factory = make_session_factory(self.engine)
        self.app = client_app(self.settings)
        self.producer = Producer(self.app, self.settings)
        self.group = ProcessGroup(env=self.env, log_dir=workdir / "logs")
        self._started = 0

    def start(self, **fanout_options: str) -> None:
        upgrade(self.engine)
        self.start_worker("fanout", self.settings.fanout_queue, concurrency=2, **fanout_options)
        self.start_worker("delivery", self.settings.delivery_queue, concurrency=4)
        self.group.start("beat", beat_command(self.workdir / "beat-schedule"))

    def start_worker(self, name: str, queue: str, concurrency: int, **options: str) -> None:
        """Start a worker (``options``: worker_command's pool, app) and wait until it answers."""
        self._started += 1
        node = f"{name}{self._started}"  # a fresh node name each start, so ping means *this* one
        self.group.start(name, worker_command(node, queue, concurrency=concurrency, **options))
        self.wait_ready(node)

    def wait_ready(self, node: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            replies = self.app.control.ping(timeout=0.5)
            if any(name.startswith(f"{node}@") for reply in replies for name in reply):
                return
            if self.group.exited():
                raise RuntimeError(f"fleet process ended: {self.group.exited()}; see {self.workdir}/logs")
        raise TimeoutError(f"worker {node} did not answer within {READY_TIMEOUT_S} s")

    def restart_delivery_worker(self) -> None:
        self.start_worker("delivery", self.settings.delivery_queue, concurrency=4)

    def stop(self) -> None:
        self.group.stop()
        self.engine.dispose()

    def cli(self, *args: str) -> str:
        """Run `notifier ARGS` against this fleet; returns what it printed (fails on an error)."""
        done = subprocess.run([sys.executable, "-m", "notifier.cli", *args], env=self.env,
                              cwd=self.workdir, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def log_tails(self, lines: int = 40) -> str:
        """The last lines of every process log, for a failing test's report."""
        return "\n".join(
            f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            for path in sorted((self.workdir / "logs").glob("*.log")))

    def log(self, name: str) -> str:
        return (self.workdir / "logs" / f"{name}.log").read_text(errors="replace")

    # --- the ledger, for assertions -------------------------------------------------------

    def start_flower(self) -> str:
        """Start Flower on a free loopback port; returns its URL once it answers."""
        if "flower" not in self.group.processes:  # one Flower per fleet, shared by tests
            self._flower_port = free_port()
            self.group.start("flower", flower_command(self._flower_port))
        return self._wait_until_answers(f"http://127.0.0.1:{self._flower_port}", "/healthcheck")

    def start_api(self) -> str:
        """Start the HTTP API (a real uvicorn process) on a free port; returns its URL."""
        if "api" not in self.group.processes:
            self._api_port = free_port()
            self.group.start("api", api_command("127.0.0.1", self._api_port))
        return self._wait_until_answers(f"http://127.0.0.1:{self._api_port}", "/readyz")

    def _wait_until_answers(self, url: str, path: str) -> str:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                requests.get(f"{url}{path}", timeout=1).raise_for_status()
                return url
            except requests.RequestException:
                time.sleep(0.2)
        raise TimeoutError(f"{url}{path} did not answer within {READY_TIMEOUT_S} s")

    def add_notification(self, repository: str, url: str, event: str = "repo_push",
                         method: str = "webhook", config: dict | None = None,
                         **kwargs) -> Notification:
        with transaction(self.factory) as session:
            return create_notification(
                session, repository, event, method, config or {"url": url},
                allowed_networks=parse_networks(self.settings.allowed_networks), **kwargs)

    def notification(self, uuid: str) -> Notification:
        with self.factory() as session:
            return session.scalars(select(Notification).where(Notification.uuid == uuid)).one()

    def deliveries(self, notification_uuid: str) -> list[Delivery]:
        with self.factory() as session:
            return list(session.scalars(
                select(Delivery).where(Delivery.notification_uuid == notification_uuid)
                .order_by(Delivery.created_at)))

    def attempts(self, delivery_id: str) -> list[Attempt]:
        with self.factory() as session:
            return list(session.scalars(
                select(Attempt).where(Attempt.delivery_id == delivery_id).order_by(Attempt.number)))

    def count_attempts(self) -> int:
        with self.factory() as session:
            return session.scalar(select(func.count()).select_from(Attempt))

    def wait_for_state(self, notification_uuid: str, states: set[str], count: int = 1,
                       timeout_s: float = 30.0) -> list[Delivery]:
        """Wait until ``count`` deliveries of the notification are in one of ``states``."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.deliveries(notification_uuid)
            if sum(d.state in states for d in found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"deliveries of {notification_uuid}: {[(d.state, d.attempts) for d in found]}"
                    f", expected {count} in {states} within {timeout_s:g} s")
            time.sleep(0.1)


def wait_until(condition, timeout_s: float = 30.0) -> None:
    """Poll ``condition`` every 0.2 s; fail the test if it is not true within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_fleet(workdir: Path, env_overrides: dict[str, str],
                  **fanout_options: str) -> Iterator[Fleet]:
    """A started fleet; ``fanout_options`` go to the fan-out worker's command (pool, app)."""
    fleet = Fleet(workdir, env_overrides)
    try:
        fleet.start(**fanout_options)
        yield fleet
    finally:
        fleet.stop()
