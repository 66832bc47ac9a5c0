"""POST /api/v1/events: the registry publishes an event over HTTP (service token only)."""

from __future__ import annotations

import pytest

from tests.api_seed import (
    DENIED_TYPES,
    assert_error,
    fanout_messages,
    queue_length,
    unreachable_broker,
)

PATH = "/api/v1/events"
PUSH = {"repository": "alice/app", "event": "repo_push", "data": {"updated_tags": ["latest"]}}


def test_the_service_publishes_an_event(api):
    body = {**PUSH, "performer": {"name": "alice"}, "event_id": "push-42"}

    response = api.call("service", "POST", PATH, json=body)

    assert response.status_code == 202 and response.json() == {"event_id": "push-42"}
    [message] = fanout_messages(api)
    assert {key: message[key] for key in ("event_id", "repository", "event", "data",
                                          "performer")} == {
        "event_id": "push-42", "repository": "alice/app", "event": "repo_push",
        "data": {"updated_tags": ["latest"]}, "performer": {"name": "alice"}}


def test_without_an_event_id_one_is_made(api):
    response = api.call("service", "POST", PATH,
                        json={"repository": "acme/web", "event": "repo_mirror_sync_started",
                              "data": {"message": "started"}})

    assert response.status_code == 202
    [message] = fanout_messages(api)
    assert message["event_id"] == response.json()["event_id"] != ""


# Who may publish: the registry's service token only.
PUBLISHERS = [("service", 202), ("owner", 403), ("org_admin", 403), ("team_admin", 403),
              ("reader", 403), ("none", 401)]


@pytest.mark.parametrize("persona, status", PUBLISHERS, ids=[p for p, _ in PUBLISHERS])
def test_only_a_service_token_may_publish(api, persona, status):
    response = api.call(persona, "POST", PATH, json=PUSH)

    if status == 202:
        assert response.status_code == 202, response.text
        assert queue_length(api, api.settings.fanout_queue) == 1
        return
    assert_error(response, status, DENIED_TYPES[status])
    assert queue_length(api, api.settings.fanout_queue) == 0
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"


BAD_EVENTS = {
    "unknown key": ({**PUSH, "tags": ["x"]}, "tags"),
    "no repository": ({"event": "repo_push", "data": PUSH["data"]}, "repository"),
    "no event": ({"repository": "alice/app", "data": PUSH["data"]}, "event"),
    "repository without a namespace": ({**PUSH, "repository": "app"}, "namespace/name"),
    "unknown event": ({**PUSH, "event": "repo_pull"}, "Unknown event 'repo_pull'"),
    "data not an object": ({**PUSH, "data": ["latest"]}, "data"),
    "missing required field": ({**PUSH, "data": {}}, "updated_tags"),
    "build without build_id": ({**PUSH, "event": "build_success", "data": {}}, "build_id"),
    "performer not an object": ({**PUSH, "performer": "alice"}, "performer"),
    "bad event_id": ({**PUSH, "event_id": "-no spaces-"}, "event_id"),
}


@pytest.mark.parametrize("body, names", BAD_EVENTS.values(), ids=BAD_EVENTS.keys())
def test_a_bad_event_is_400_naming_the_problem(api, body, names):
    response = api.call("service", "POST", PATH, json=body)

    assert names in assert_error(response, 400, "invalid_request")["error_message"]
    assert queue_length(api, api.settings.fanout_queue) == 0


def test_a_body_that_is_not_json_is_400(api):
    response = api.client.post(PATH, content=b"repository=alice/app",
                               headers={**api.headers("service"),
                                        "Content-Type": "application/json"})
    assert_error(response, 400, "invalid_request")


def test_broker_down_is_503_in_the_error_shape(api):
    with unreachable_broker(api) as down:
        response = down.call("service", "POST", PATH, json=PUSH)

    message = assert_error(response, 503, "unavailable")["error_message"]
    assert "nothing was enqueued" in message
