"""No accepted event is lost in a database outage of any length.

A private PostgreSQL is stopped under a running fleet for longer than the fan-out used to keep
retrying (12 retries, 52 s with these settings, after which the event was gone) while events
are published throughout; once it is back, every event is delivered exactly once per
notification, and the workers neither burned CPU nor flooded their logs meanwhile."""

from __future__ import annotations

import threading
import time

import psutil
import pytest

from tests.conftest import REDIS_SERVER
from tests.fleet import FLEET_SETTINGS, running_fleet
from tests.private_servers import PrivatePostgres
from tests.receivers import Receiver

pytestmark = pytest.mark.fleet

VISIBILITY_TIMEOUT_S = float(FLEET_SETTINGS["NOTIFIER_VISIBILITY_TIMEOUT_S"])
OLD_RETRY_TOTAL_S = sum(min(2 ** n, VISIBILITY_TIMEOUT_S / 2, 60) for n in range(12))
OUTAGE_S = OLD_RETRY_TOTAL_S + 8
EVENTS_PER_S = 5
LOG_INTERVAL_S = 10
DRAIN_TIMEOUT_S = 180


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        for each in [process, *process.children(recursive=True)]:
            times = each.cpu_times()
            total += times.user + times.system
    return total


class Publisher(threading.Thread):
    """Publishes one event every 1/EVENTS_PER_S seconds, as a registry would, until stopped."""

    def __init__(self, fleet):
        super().__init__(daemon=True)
        self.fleet, self.tags, self.stopping = fleet, [], threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            tag = f"t{len(self.tags)}"
            self.fleet.producer.publish("outage/repo", "repo_push", {"updated_tags": [tag]},
                                        event_id=f"outage-{tag}")
            self.tags.append(tag)
            self.stopping.wait(1 / EVENTS_PER_S)


def test_events_published_through_a_long_database_outage_are_all_delivered_once(
        tmp_path, redis_db):
    postgres = PrivatePostgres()
    receivers = [Receiver(), Receiver()]
    env = {"NOTIFIER_BROKER_URL": f"{REDIS_SERVER}/{redis_db}",
           "NOTIFIER_DATABASE_URL": postgres.url,
           "NOTIFIER_OUTAGE_LOG_INTERVAL_S": str(LOG_INTERVAL_S)}
    try:
        postgres.start()
        with running_fleet(tmp_path, env) as fleet:
            notifications = [fleet.add_notification("outage/repo", r.url) for r in receivers]
            workers = [psutil.Process(fleet.group.processes[name].pid)
                       for name in ("fanout", "delivery")]
            publisher = Publisher(fleet)
            publisher.start()
            time.sleep(3)

            postgres.stop()
            cpu_before, published_before = cpu_seconds(workers), len(publisher.tags)
            time.sleep(OUTAGE_S)
            cpu_during_outage = cpu_seconds(workers) - cpu_before
            published_during_outage = len(publisher.tags) - published_before
            postgres.start()
            time.sleep(3)
            publisher.stopping.set()
            publisher.join(timeout=10)

            tags = publisher.tags
            assert published_during_outage >= OUTAGE_S  # accepted throughout the outage
            for receiver, notification in zip(receivers, notifications):
                receiver.wait_for(len(tags), timeout_s=DRAIN_TIMEOUT_S)
                receiver.assert_each_tag_once(tags)
                deliveries = fleet.wait_for_state(notification.uuid, {"delivered"},
                                                  count=len(tags), timeout_s=60)
                assert len(deliveries) == len(tags)

            logs = {name: fleet.log(name) for name in ("fanout", "delivery")}
    finally:
        for receiver in receivers:
            receiver.close()
        postgres.close()

    # Waiting cost next to nothing: no busy loop while the database was away.
    assert cpu_during_outage < 0.3 * OUTAGE_S, cpu_during_outage
    # One warning per interval and process, not one per message; the fan-out worker, which
    # got events all along, said when the database was back.
    for name, text in logs.items():
        warnings = text.count("database unavailable for")
        assert warnings <= OUTAGE_S / LOG_INTERVAL_S + 3, (name, warnings)
    assert "database unavailable for" in logs["fanout"]
    assert "database reachable again after" in logs["fanout"]

