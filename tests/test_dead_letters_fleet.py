"""Messages that keep failing for a reason other than the database neither loop forever nor
vanish: after a bounded number of tries they are in the dead-letter store with the reason, and
on-call lists, replays (once the cause is fixed) and drops them. Real workers on Redis, with
faults switched on by files (tests/faulty_workers.py)."""

from __future__ import annotations

import json
import time

import pytest

from notifier.deadletters import list_dead_letters
from tests.conftest import REDIS_SERVER, create_database, drop_database
from tests.fleet import running_fleet

pytestmark = pytest.mark.fleet

MAX_TRIES = 3
PUSH = {"updated_tags": ["latest"]}
TIMEOUT_S = 60


@pytest.fixture
def faulty_fleet(tmp_path, redis_db):
    faults = tmp_path / "faults"
    faults.mkdir()
    database = create_database("notifier_dead_letters")
    env = {"NOTIFIER_DATABASE_URL": database,
           "NOTIFIER_BROKER_URL": f"{REDIS_SERVER}/{redis_db}",
           "NOTIFIER_FANOUT_MAX_TRIES": str(MAX_TRIES),
           "NOTIFIER_TEST_FAULTS": str(faults)}
    try:
        # prefork: a child killed by a message is replaced, and its message handed out again
        with running_fleet(tmp_path, env, app="tests.faulty_workers", pool="prefork") as fleet:
            fleet.faults = faults
            yield fleet
    finally:
        drop_database(database)


def dead_letters(fleet) -> list[dict]:
    with fleet.factory() as session:
        return list_dead_letters(session)


def wait_for_dead_letter(fleet, event_id: str) -> dict:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        found = [letter for letter in dead_letters(fleet) if letter["event_id"] == event_id]
        if found:
            return found[0]
        time.sleep(0.5)
    raise AssertionError(f"event {event_id} did not reach the dead-letter store in {TIMEOUT_S} s")


def test_a_failing_message_is_buried_listed_replayed_and_dropped(faulty_fleet, receiver):
    fleet = faulty_fleet
    notification = fleet.add_notification("dlfail/repo", receiver.url)
    (fleet.faults / "fail-dlfail").touch()
    event_id = fleet.producer.publish("dlfail/repo", "repo_push", PUSH)

    letter = wait_for_dead_letter(fleet, event_id)
    assert json.loads(fleet.cli("dead-letters", "list", "--json")) == [letter]
    assert letter["tries"] == MAX_TRIES
    assert letter["reason"] == "RuntimeError: injected failure for dlfail"
    assert letter["task"] == "notifier.fan_out"
    assert letter["repository"] == "dlfail/repo" and letter["event"] == "repo_push"
    assert letter["args"][0]["data"] == PUSH
    table = fleet.cli("dead-letters", "list")
    assert "injected failure for dlfail" in table and str(letter["id"]) in table
    assert "dead-letter store as #" in fleet.log("fanout")
    assert receiver.requests == []

    (fleet.faults / "fail-dlfail").unlink()  # the cause is fixed
    assert fleet.cli("dead-letters", "replay", str(letter["id"])) == \
        f"replayed dead letter {letter['id']}"
    [request] = receiver.wait_for(1, timeout_s=TIMEOUT_S)
    assert json.loads(request.body)["updated_tags"] == ["latest"]
    assert dead_letters(fleet) == []
    # Replay goes through the normal fan-out with the same event id: a second one sends nothing.
    fleet.producer.publish("dlfail/repo", "repo_push", PUSH, event_id=event_id)
    [delivery] = fleet.wait_for_state(notification.uuid, {"delivered"})
    time.sleep(1)
    assert len(receiver.requests) == 1 and len(fleet.deliveries(notification.uuid)) == 1

    (fleet.faults / "fail-dlfail").touch()
    second = wait_for_dead_letter(fleet, fleet.producer.publish("dlfail/repo", "repo_push", PUSH))
    assert fleet.cli("dead-letters", "drop", str(second["id"])) == \
        f"dropped dead letter {second['id']}"
    assert dead_letters(fleet) == []
    assert len(receiver.requests) == 1


def test_a_message_that_kills_its_worker_every_time_is_buried(faulty_fleet, receiver):
    fleet = faulty_fleet
    fleet.add_notification("dlkill/repo", receiver.url)
    (fleet.faults / "kill-dlkill").touch()
    event_id = fleet.producer.publish("dlkill/repo", "repo_push", PUSH)

    letter = wait_for_dead_letter(fleet, event_id)
    assert letter["tries"] == MAX_TRIES
    assert letter["reason"].startswith("WorkerLost: the broker handed this message out again")
    assert fleet.group.exited() == {}  # the worker itself lives on; only its children died

    # Other events go on being delivered meanwhile and afterwards.
    fleet.add_notification("dlok/repo", receiver.url)
    fleet.producer.publish("dlok/repo", "repo_push", PUSH)
    receiver.wait_for(1, timeout_s=TIMEOUT_S)

    (fleet.faults / "kill-dlkill").unlink()
    fleet.cli("dead-letters", "replay", "--all")
    receiver.wait_for(2, timeout_s=TIMEOUT_S)
    assert dead_letters(fleet) == []
