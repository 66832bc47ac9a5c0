"""Hostile tenants against real worker processes (PostgreSQL + Redis): a pathological
ref-regex, a gzip bomb, a byte-dripping receiver and an oversized body template each cost one
bounded step, while everyone else's notifications keep being delivered."""

from __future__ import annotations

import pytest

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
