"""Hostile tenants against real worker processes (PostgreSQL + Redis): a pathological
ref-regex, a gzip bomb, a byte-dripping receiver and an oversized body template each cost one
bounded step, while everyone else's notifications keep being delivered."""

from __future__ import annotations

import psutil
import pytest

from tests.receivers import RawReceiver, gzip_bomb_answer

pytestmark = pytest.mark.fleet

PATHOLOGICAL = r"(\w|[a-z]|.)*#"  # minutes of backtracking per ref under Python's re


def build_event(ref: str) -> dict:
    return {"build_id": "b1", "trigger_metadata": {"ref": ref}}


def test_a_pathological_ref_regex_does_not_stall_the_fan_out(redis_fleet, receiver, unique_repo):
    from tests.receivers import Receiver

    other = Receiver()
    try:
        hostile = redis_fleet.add_notification(unique_repo, other.url, event="build_success",
                                               event_config={"ref-regex": PATHOLOGICAL})
        matching = redis_fleet.add_notification(unique_repo, receiver.url, event="build_success",
                                                event_config={"ref-regex": "refs/heads/.*"})
        bystander = redis_fleet.add_notification(f"{unique_repo}-other", receiver.url)
        ref = "refs/heads/" + "a" * 1000

        redis_fleet.producer.publish(unique_repo, "build_success", build_event(ref))
        redis_fleet.producer.publish(f"{unique_repo}-other", "repo_push",
                                     {"updated_tags": ["v1"]})

        redis_fleet.wait_for_state(matching.uuid, {"delivered"})
        redis_fleet.wait_for_state(bystander.uuid, {"delivered"})
        assert redis_fleet.deliveries(hostile.uuid) == []  # matched, in linear time: no '#'
        assert other.requests == []
    finally:
        other.close()


def worker_rss(fleet, name: str = "delivery") -> int:
    process = psutil.Process(fleet.group.processes[name].pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])


def test_a_gzip_bomb_costs_one_bounded_attempt(redis_fleet, receiver, unique_repo):
    bomb = RawReceiver(gzip_bomb_answer(1 << 30))  # 1 MiB on the wire, 1 GiB inflated
    try:
        hostile = redis_fleet.add_notification(unique_repo, bomb.url)
        bystander = redis_fleet.add_notification(f"{unique_repo}-other", receiver.url)
        before = worker_rss(redis_fleet)

        redis_fleet.producer.publish(unique_repo, "repo_push", {"updated_tags": ["v1"]})
        redis_fleet.producer.publish(f"{unique_repo}-other", "repo_push",
                                     {"updated_tags": ["v1"]})

        [delivery] = redis_fleet.wait_for_state(hostile.uuid, {"delivered"})
        redis_fleet.wait_for_state(bystander.uuid, {"delivered"})
        grown_mib = (worker_rss(redis_fleet) - before) / 2**20
        [attempt] = redis_fleet.attempts(delivery.id)
        assert len(attempt.response_excerpt) == 2048 and "\x00" not in attempt.response_excerpt
        assert grown_mib < 100, f"the delivery worker grew by {grown_mib:.0f} MiB"
    finally:
        bomb.close()


def test_a_byte_dripping_receiver_costs_one_bounded_attempt_each_time(redis_fleet, receiver,
                                                                      unique_repo):
    body = b"x" * 200
    drip = RawReceiver(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
                       drip_s=0.1)  # 20 s to answer in full, a byte well within any timeout
    try:
        hostile = redis_fleet.add_notification(unique_repo, drip.url)
        bystander = redis_fleet.add_notification(f"{unique_repo}-other", receiver.url)

        redis_fleet.producer.publish(unique_repo, "repo_push", {"updated_tags": ["v1"]})
        redis_fleet.producer.publish(f"{unique_repo}-other", "repo_push",
                                     {"updated_tags": ["v1"]})

        redis_fleet.wait_for_state(bystander.uuid, {"delivered"})
        [delivery] = redis_fleet.wait_for_state(hostile.uuid, {"failed"}, timeout_s=60)
        attempts = redis_fleet.attempts(delivery.id)
        timeout_s = redis_fleet.settings.send_timeout_s
        assert [a.error_kind for a in attempts] == ["timeout"] * redis_fleet.settings.max_attempts
        assert all(a.error.startswith(f"no complete answer within {timeout_s:g} s")
                   for a in attempts)
        assert all(a.duration_ms < (timeout_s + 3) * 1000 for a in attempts)  # not 20 s
    finally:
        drip.close()


def test_an_oversized_body_template_is_refused_by_the_api_and_by_the_worker(redis_fleet,
                                                                           receiver, unique_repo):
    import json

    import requests
    from sqlalchemy import update

    from notifier.db import transaction
    from notifier.models import Notification

    namespace = unique_repo.split("/")[0]
    redis_fleet.cli("directory", "user", "add", namespace)
    token = redis_fleet.cli("token", "create", "--user", namespace)
    api = redis_fleet.start_api()
    template = json.dumps({"text": "${repository} " * 35_000})  # ~500 KB: under the body limit

    answer = requests.post(
        f"{api}/api/v1/repository/{unique_repo}/notification/", timeout=60,
        headers={"Authorization": f"Bearer {token}"},
        json={"event": "repo_push", "method": "webhook",
              "config": {"url": receiver.url, "template": template}})

    assert answer.status_code == 400
    assert answer.json()["error_message"].startswith("Invalid body template: ")
    assert "at most 16384" in answer.json()["error_message"]

    # One stored before the bound (written straight to the table) fails at once, for good.
    hostile = redis_fleet.add_notification(unique_repo, receiver.url)
    with transaction(redis_fleet.factory) as session:
        session.execute(update(Notification).where(Notification.uuid == hostile.uuid).values(
            config={**hostile.config, "template": json.dumps({"t": "${repository} " * 90_000})}))
    bystander = redis_fleet.add_notification(f"{unique_repo}-other", receiver.url)
    redis_fleet.producer.publish(unique_repo, "repo_push", {"updated_tags": ["v1"]})
    redis_fleet.producer.publish(f"{unique_repo}-other", "repo_push", {"updated_tags": ["v1"]})

    [delivery] = redis_fleet.wait_for_state(hostile.uuid, {"failed"})
    redis_fleet.wait_for_state(bystander.uuid, {"delivered"})
    [attempt] = redis_fleet.attempts(delivery.id)
    assert attempt.error_kind == "invalid_template" and "at most 16384" in attempt.error
    assert len(receiver.requests) == 1  # the bystander's
