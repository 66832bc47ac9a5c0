"""An accepted publish survives a Redis crash: Redis with an append-only file fsynced on every
write (`appendfsync always`, as the compose file runs it) is SIGKILLed while events stream in;
after it restarts from its file, the same workers deliver every event `publish` accepted, once."""

from __future__ import annotations

import threading
import time

import pytest

from notifier.errors import BrokerUnavailable
from tests.private_servers import fleet_on_private_redis

pytestmark = pytest.mark.fleet

DRAIN_TIMEOUT_S = 120


class Registry(threading.Thread):
    """Publishes a stream of events the way a registry does: when the broker refuses one, it
    tries the same event id again a little later. Remembers which ones were accepted."""

    def __init__(self, fleet):
        super().__init__(daemon=True)
        self.fleet, self.accepted, self.refused = fleet, [], 0
        self.stopping = threading.Event()

    def run(self) -> None:
        number = 0
        while not self.stopping.is_set():
            tag = f"t{number}"
            try:
                self.fleet.producer.publish("crash/repo", "repo_push", {"updated_tags": [tag]},
                                            event_id=f"crash-{tag}")
            except BrokerUnavailable:
                self.refused += 1
                time.sleep(0.2)
                continue
            self.accepted.append(tag)
            number += 1
            time.sleep(0.02)


def test_events_accepted_before_redis_is_killed_are_all_delivered(tmp_path, receiver):
    with fleet_on_private_redis(tmp_path, "notifier_redis_crash", appendfsync="always") as (
            fleet, redis):
        notification = fleet.add_notification("crash/repo", receiver.url)
        registry = Registry(fleet)
        registry.start()
        time.sleep(3)
        redis.kill()
        accepted_before_crash = len(registry.accepted)
        time.sleep(1)
        redis.start()  # recovers from its append-only file
        time.sleep(3)
        # The workers outlive the crash (config/redis_broker.py) and reconnect; messages
        # whose ack was lost with Redis come back after the visibility timeout.
        assert fleet.group.exited() == {}
        registry.stopping.set()
        registry.join(timeout=30)

        accepted = registry.accepted
        assert accepted_before_crash > 0 and len(accepted) > accepted_before_crash
        try:
            receiver.wait_for(len(accepted), timeout_s=DRAIN_TIMEOUT_S)
        except AssertionError as exc:
            missing = _where_missing(fleet, notification.uuid, receiver, accepted)
            raise AssertionError(f"{exc}; {missing}") from None
        receiver.assert_each_tag_once(accepted)
        assert len(fleet.wait_for_state(notification.uuid, {"delivered"},
                                        count=len(accepted), timeout_s=60)) == len(accepted)


def _where_missing(fleet, notification_uuid: str, receiver, accepted: list[str]) -> str:
    """Where each accepted event that was not received is: never recorded (its fan-out message
    was lost) or a delivery in some state."""
    received = receiver.tags()
    states = {delivery.event_id: delivery.state
              for delivery in fleet.deliveries(notification_uuid)}
    return "missing: " + ", ".join(
        f"{tag} ({states.get(f'crash-{tag}', 'event not recorded')})"
        for tag in accepted if tag not in received)
