"""End to end with real worker processes: publish → fan-out → webhook delivery → ledger.

Each test runs on PostgreSQL + Redis and on the embedded default (SQLite + local-folder broker),
except where a test is about Redis itself.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from standardwebhooks.webhooks import Webhook

from notifier.db import transaction
from notifier.directory import save_user
from notifier.inapp import list_inbox
from tests.receivers import Receiver

pytestmark = pytest.mark.fleet

PUSH = {"updated_tags": ["latest", "v1.2"]}


def test_push_reaches_receiver_with_quay_body_and_valid_signature(fleet, receiver, unique_repo):
    notification = fleet.add_notification(unique_repo, receiver.url)
    event_id = fleet.producer.publish(unique_repo, "repo_push", PUSH,
                                      performer={"entity_name": "alice"})

    [request] = receiver.wait_for(1)
    namespace, name = unique_repo.split("/")
    assert json.loads(request.body) == {
        "repository": unique_repo,
        "namespace": namespace,
        "name": name,
        "docker_url": f"registry.example.com/{unique_repo}",
        "homepage": f"https://registry.example.com/repository/{unique_repo}",
        "updated_tags": ["latest", "v1.2"],
    }
    Webhook(notification.config["secret"]).verify(request.body, request.headers)
    assert request.headers["x-notifier-event"] == "repo_push"
    [delivery] = fleet.wait_for_state(notification.uuid, {"delivered"})
    assert request.headers["webhook-id"] == delivery.id
    assert delivery.event_id == event_id


def test_500_500_200_is_three_attempts_with_one_webhook_id(fleet, receiver, unique_repo):
    receiver.statuses = [500, 500, 200]
    notification = fleet.add_notification(unique_repo, receiver.url)
    fleet.producer.publish(unique_repo, "repo_push", PUSH)

    requests = receiver.wait_for(3)
    [delivery] = fleet.wait_for_state(notification.uuid, {"delivered"})
    assert {r.headers["webhook-id"] for r in requests} == {delivery.id}
    attempts = fleet.attempts(delivery.id)
    assert [(a.number, a.status_code) for a in attempts] == [(1, 500), (2, 500), (3, 200)]
    assert delivery.attempts == 3 and delivery.last_error is None
    assert "retrying webhook " in fleet.log("delivery")
    assert "receiver answered HTTP 500 (attempt 1 of 3); next attempt at" \
        in fleet.log("delivery")


def test_always_failing_receiver_disables_after_max_failures(fleet, receiver, unique_repo):
    receiver.statuses = [500]
    notification = fleet.add_notification(unique_repo, receiver.url)

    for failures in (1, 2, 3):
        fleet.producer.publish(unique_repo, "repo_push", PUSH)
        fleet.wait_for_state(notification.uuid, {"failed"}, count=failures)
        assert fleet.notification(notification.uuid).number_of_failures == failures

    disabled = fleet.notification(notification.uuid)
    assert not disabled.enabled and "3 failed deliveries in a row" in disabled.disabled_reason
    assert len(receiver.requests) == 9  # three deliveries, three attempts each
    assert all(d.attempts == 3 and d.last_status_code == 500
               for d in fleet.deliveries(notification.uuid))

    fleet.producer.publish(unique_repo, "repo_push", PUSH)
    deliveries = fleet.wait_for_state(notification.uuid, {"skipped"})
    assert deliveries[-1].last_error == "notification disabled"
    assert len(receiver.requests) == 9


def test_delivered_resets_the_failure_count(fleet, receiver, unique_repo):
    receiver.statuses = [500, 500, 500, 200]
    notification = fleet.add_notification(unique_repo, receiver.url)
    fleet.producer.publish(unique_repo, "repo_push", PUSH)
    fleet.wait_for_state(notification.uuid, {"failed"})
    assert fleet.notification(notification.uuid).number_of_failures == 1

    fleet.producer.publish(unique_repo, "repo_push", PUSH)
    fleet.wait_for_state(notification.uuid, {"delivered"})
    assert fleet.notification(notification.uuid).number_of_failures == 0


def test_410_disables_at_once_and_tells_the_admins(fleet, receiver, unique_repo):
    owner = unique_repo.split("/")[0]  # the namespace's user is an admin of the repository
    with transaction(fleet.factory) as session:
        save_user(session, owner)
    receiver.statuses = [410]
    notification = fleet.add_notification(unique_repo, receiver.url)
    fleet.producer.publish(unique_repo, "repo_push", PUSH)

    [delivery] = fleet.wait_for_state(notification.uuid, {"failed"})
    assert delivery.attempts == 1 and delivery.last_status_code == 410
    disabled = fleet.notification(notification.uuid)
    assert not disabled.enabled and "410" in disabled.disabled_reason
    with fleet.factory() as session:
        [notice], _ = list_inbox(session, owner)
    assert notice["kind"] == "notification_disabled"
    assert notice["metadata"]["notification_uuid"] == notification.uuid
    assert "410" in notice["metadata"]["reason"]


def test_fan_out_delivered_twice_sends_once(fleet, receiver, unique_repo):
    notification = fleet.add_notification(unique_repo, receiver.url)
    for _ in range(2):
        fleet.producer.publish(unique_repo, "repo_push", PUSH, event_id=f"dup-{unique_repo[2:8]}")

    fleet.wait_for_state(notification.uuid, {"delivered"})
    time.sleep(1.5)  # room for a wrong second POST to arrive
    assert len(fleet.deliveries(notification.uuid)) == 1
    assert len(receiver.requests) == 1


def test_ref_regex_filters_builds(fleet, receiver, unique_repo):
    notification = fleet.add_notification(unique_repo, receiver.url, event="build_success",
                                          event_config={"ref-regex": "refs/heads/main"})
    for ref in ("refs/heads/dev", "refs/heads/main"):
        fleet.producer.publish(unique_repo, "build_success",
                               {"build_id": f"build-{ref[-3:]}", "trigger_metadata": {"ref": ref}})

    [request] = receiver.wait_for(1)
    assert json.loads(request.body)["trigger_metadata"]["ref"] == "refs/heads/main"
    fleet.wait_for_state(notification.uuid, {"delivered"})
    time.sleep(1)  # room for the filtered one to arrive, wrongly
    assert len(fleet.deliveries(notification.uuid)) == 1 and len(receiver.requests) == 1


@pytest.mark.parametrize(("level", "delivered"), [(0, False), ("high", True)])
def test_vulnerability_level_filter(fleet, receiver, unique_repo, level, delivered):
    notification = fleet.add_notification(unique_repo, receiver.url, event="vulnerability_found",
                                          event_config={"level": level})
    fleet.producer.publish(unique_repo, "vulnerability_found",
                           {"tags": ["latest"], "vulnerability": {"id": "CVE-1", "priority": "High"}})
    # A second, unfiltered notification on the same repository shows the event was fanned out.
    witness = fleet.add_notification(unique_repo, receiver.url, event="vulnerability_found")
    fleet.producer.publish(unique_repo, "vulnerability_found",
                           {"tags": ["latest"], "vulnerability": {"id": "CVE-2", "priority": "High"}})
    fleet.wait_for_state(witness.uuid, {"delivered"})
    if delivered:
        fleet.wait_for_state(notification.uuid, {"delivered"}, count=2)
    else:
        time.sleep(0.5)
        assert fleet.deliveries(notification.uuid) == []


def test_notification_test_sends_the_sample_marked_as_test(fleet, receiver, unique_repo):
    receiver.statuses = [500]
    notification = fleet.add_notification(unique_repo, receiver.url, event="build_failure")

    event_id = fleet.cli("notification", "test", notification.uuid)

    request = receiver.wait_for(1)[0]
    body = json.loads(request.body)
    assert (body["build_id"], body["error_message"]) == ("fake-build-id",
                                                          "This is a fake error message")
    assert body["homepage"] == \
        f"https://registry.example.com/repository/{unique_repo}/build/fake-build-id"
    [delivery] = fleet.wait_for_state(notification.uuid, {"failed"})
    assert delivery.is_test and delivery.event_id == event_id
    assert fleet.notification(notification.uuid).number_of_failures == 0  # tests do not count


def test_worker_killed_mid_request_loses_nothing(fleet, receiver, unique_repo):
    receiver.hold = threading.Event()
    notification = fleet.add_notification(unique_repo, receiver.url)
    fleet.producer.publish(unique_repo, "repo_push", PUSH)
    [first] = receiver.wait_for(1)

    fleet.group.kill("delivery")  # SIGKILL while the receiver holds the request
    receiver.hold.set()
    fleet.restart_delivery_worker()

    requests = receiver.wait_for(2, timeout_s=40)
    [delivery] = fleet.wait_for_state(notification.uuid, {"delivered"})
    assert {r.headers["webhook-id"] for r in requests} == {first.headers["webhook-id"]} \
        == {delivery.id}
    kinds = [a.error_kind for a in fleet.attempts(delivery.id)]
    assert kinds == ["worker_lost", None]


def test_a_slow_receiver_gets_no_more_than_its_share_of_the_workers(fleet, unique_repo):
    """The delivery worker has 4 threads; one endpoint may use 2 of them (the fleet's setting)."""
    slow, fast = Receiver(delay_s=1.0), Receiver()
    try:
        slow_notification = fleet.add_notification(unique_repo, slow.url)
        fast_notification = fleet.add_notification(f"{unique_repo}-fast", fast.url)
        for _ in range(6):
            fleet.producer.publish(unique_repo, "repo_push", PUSH)
        slow.wait_for(2)
        fleet.producer.publish(f"{unique_repo}-fast", "repo_push", PUSH)

        fleet.wait_for_state(fast_notification.uuid, {"delivered"}, timeout_s=5)
        fleet.wait_for_state(slow_notification.uuid, {"delivered"}, count=6, timeout_s=60)
        assert slow.max_in_flight == 2
        assert all(d.attempts == 1 for d in fleet.deliveries(slow_notification.uuid))
    finally:
        slow.close()
        fast.close()
