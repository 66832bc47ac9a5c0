"""Ours, beyond Quay: a notification's deliveries, their attempts, and sending them again."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import timedelta

import pytest

from tests.api_seed import (
    PERMISSION_TABLE,
    T0,
    add_delivery,
    add_notification,
    assert_denied,
    assert_error,
    delivery_row,
    delivery_states,
    notification_path,
    queue_length,
    snapshot,
    unreachable_broker,
)


@dataclass(frozen=True)
class Call:
    name: str
    method: str
    rest: str  # after ".../notification/{uuid}"; {delivery} is a failed delivery's id
    ok: int
    body: dict | None = None

    def path(self, repository: str, uuid_: str, delivery_id: str) -> str:
        return notification_path(repository, uuid_, self.rest.format(delivery=delivery_id))


CALLS = [
    Call("list", "GET", "/deliveries", 200),
    Call("get", "GET", "/deliveries/{delivery}", 200),
    Call("redeliver_one", "POST", "/deliveries/{delivery}/redeliver", 202),
    Call("redeliver_all", "POST", "/redeliver", 202, {"states": ["failed"]}),
]


def _page(api, uuid_, persona="owner", repository="alice/app", **params):
    return api.call(persona, "GET", notification_path(repository, uuid_, "/deliveries"),
                    params=params)


@pytest.mark.parametrize("case", PERMISSION_TABLE, ids=lambda case: case.id)
@pytest.mark.parametrize("call", CALLS, ids=lambda call: call.name)
def test_only_repository_admins_may_call(api, call, case):
    uuid_ = add_notification(api, case.repository)
    delivery_id = add_delivery(api, uuid_, state="failed")
    before = snapshot(api)

    response = api.call(case.persona, call.method, call.path(case.repository, uuid_, delivery_id),
                        json=call.body)

    if case.denied:
        assert_denied(api, case, response, before)
    else:
        assert response.status_code == call.ok, response.text


@pytest.mark.parametrize("call", CALLS, ids=lambda call: call.name)
def test_another_repositorys_notification_is_not_found(api, call):
    theirs = add_notification(api, "acme/web")
    delivery_id = add_delivery(api, theirs)
    before = snapshot(api)

    response = api.call("owner", call.method, call.path("alice/app", theirs, delivery_id),
                        json=call.body)

    assert assert_error(response, 404)["error_message"] == f"no notification {theirs}"
    assert snapshot(api) == before


@pytest.mark.parametrize("rest", ["/deliveries/{delivery}", "/deliveries/{delivery}/redeliver"])
def test_a_delivery_of_another_notification_is_not_found(api, rest):
    mine = add_notification(api, "alice/app")
    other = add_notification(api, "alice/app")
    delivery_id = add_delivery(api, other)
    before = snapshot(api)

    response = api.call("owner", "POST" if rest.endswith("redeliver") else "GET",
                        notification_path("alice/app", mine, rest.format(delivery=delivery_id)))

    assert_error(response, 404, "not_found")
    assert snapshot(api) == before


# --- the page ------------------------------------------------------------------------------------

def test_walking_the_cursor_visits_every_delivery_once_newest_first(api):
    uuid_ = add_notification(api, "alice/app")
    # Five share each creation time, so the order must break ties by id to stay stable.
    made = {add_delivery(api, uuid_, created_at=T0 + timedelta(minutes=n // 5)) for n in range(25)}
    add_delivery(api, add_notification(api, "alice/app"))  # another notification's

    seen, pages, cursor = [], [], None
    while True:
        response = _page(api, uuid_, limit=10, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(len(page["deliveries"]))
        seen += page["deliveries"]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert pages == [10, 10, 5]
    ids = [d["id"] for d in seen]
    assert len(ids) == len(set(ids)) and set(ids) == made
    keys = [(d["created"], d["id"]) for d in seen]
    assert keys == sorted(keys, reverse=True)


def test_a_page_that_ends_exactly_has_no_next_cursor(api):
    uuid_ = add_notification(api, "alice/app")
    for n in range(3):
        add_delivery(api, uuid_, created_at=T0 + timedelta(seconds=n))

    first = _page(api, uuid_, limit=3).json()

    assert len(first["deliveries"]) == 3 and first["next_cursor"] is None


def test_the_default_page_is_20(api):
    uuid_ = add_notification(api, "alice/app")
    for n in range(21):
        add_delivery(api, uuid_, created_at=T0 + timedelta(seconds=n))

    page = _page(api, uuid_).json()

    assert len(page["deliveries"]) == 20 and page["next_cursor"] is not None


def test_state_filters_the_page(api):
    uuid_ = add_notification(api, "alice/app")
    failed = {add_delivery(api, uuid_, state="failed", created_at=T0 + timedelta(seconds=n))
              for n in range(3)}
    add_delivery(api, uuid_, state="delivered")

    page = _page(api, uuid_, state="failed").json()

    assert {d["id"] for d in page["deliveries"]} == failed
    assert {d["state"] for d in page["deliveries"]} == {"failed"}


def test_the_view_holds_the_event_and_no_secret(api):
    uuid_ = add_notification(api, "alice/app")
    delivery_id = add_delivery(api, uuid_, state="failed", attempts=8)

    [view] = _page(api, uuid_).json()["deliveries"]

    assert {key: view[key] for key in ("id", "event", "repository", "notification", "method",
                                       "state", "attempts", "last_error", "is_test")} == {
        "id": delivery_id, "event": "repo_push", "repository": "alice/app",
        "notification": uuid_, "method": "webhook", "state": "failed", "attempts": 8,
        "last_error": "HTTP 500", "is_test": False}
    assert "whsec_" not in _page(api, uuid_).text


BAD_QUERIES = {
    "limit 0": {"limit": 0},
    "limit 101": {"limit": 101},
    "limit not a number": {"limit": "ten"},
    "unknown state": {"state": "lost"},
    "cursor not base64": {"cursor": "!!!"},
    "cursor not json": {"cursor": base64.urlsafe_b64encode(b"hello").decode()},
    "cursor without zone": {"cursor": base64.urlsafe_b64encode(
        b'["2024-05-01T12:00:00", "x"]').decode()},
    "cursor of another shape": {"cursor": base64.urlsafe_b64encode(b'{"a": 1}').decode()},
}


@pytest.mark.parametrize("params", BAD_QUERIES.values(), ids=BAD_QUERIES.keys())
def test_a_bad_query_is_400(api, params):
    uuid_ = add_notification(api, "alice/app")
    response = _page(api, uuid_, **params)
    assert_error(response, 400, "invalid_request")


# --- one delivery --------------------------------------------------------------------------------

def test_one_delivery_comes_with_its_attempts(api):
    uuid_ = add_notification(api, "acme/web")
    delivery_id = add_delivery(api, uuid_, attempts=3, attempt_log=3)

    response = api.call("team_admin", "GET",
                        notification_path("acme/web", uuid_, f"/deliveries/{delivery_id}"))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == delivery_id and body["state"] == "failed"
    assert [a["number"] for a in body["attempts"]] == [1, 2, 3]
    assert body["attempts"][0] | {"started": None} == {
        "number": 1, "started": None, "duration_ms": 5, "status_code": 500,
        "error_kind": "http_status", "error": "HTTP 500", "response_excerpt": "oops"}


def test_an_unknown_delivery_is_not_found(api):
    uuid_ = add_notification(api, "alice/app")
    response = api.call("owner", "GET", notification_path("alice/app", uuid_, "/deliveries/nope"))
    assert_error(response, 404, "not_found")


# --- sending again -------------------------------------------------------------------------------

def _redeliver_one(api, uuid_, delivery_id, target=None):
    path = notification_path("alice/app", uuid_, f"/deliveries/{delivery_id}/redeliver")
    return (target or api).call("owner", "POST", path)


@pytest.mark.parametrize("state", ["failed", "skipped"])
def test_redeliver_puts_the_delivery_back_on_the_queue(api, state):
    uuid_ = add_notification(api, "alice/app")
    delivery_id = add_delivery(api, uuid_, state=state, attempts=8)

    response = _redeliver_one(api, uuid_, delivery_id)

    assert response.status_code == 202 and response.json() == {}
    row = delivery_row(api, delivery_id)
    assert (row.state, row.attempts_before_redelivery, row.last_error) == ("pending", 8, None)
    assert queue_length(api, api.settings.delivery_queue) == 1


@pytest.mark.parametrize("state", ["pending", "delivering", "delivered", "retrying"])
def test_only_failed_or_skipped_deliveries_go_again(api, state):
    uuid_ = add_notification(api, "alice/app")
    delivery_id = add_delivery(api, uuid_, state=state)

    response = _redeliver_one(api, uuid_, delivery_id)

    assert f"is {state}" in assert_error(response, 400, "invalid_request")["error_message"]
    assert delivery_row(api, delivery_id).state == state
    assert queue_length(api, api.settings.delivery_queue) == 0


def test_redeliver_saves_first_and_says_so_when_the_broker_is_down(api):
    uuid_ = add_notification(api, "alice/app")
    delivery_id = add_delivery(api, uuid_, state="failed")

    with unreachable_broker(api) as down:
        response = _redeliver_one(api, uuid_, delivery_id, target=down)

    assert "scheduler" in assert_error(response, 503, "unavailable")["error_message"]
    # Committed before enqueueing: the scheduler re-enqueues stale pending deliveries.
    assert delivery_row(api, delivery_id).state == "pending"


def _redeliver_all(api, uuid_, body=None):
    return api.call("owner", "POST", notification_path("alice/app", uuid_, "/redeliver"),
                    json=body)


def test_redeliver_all_sends_every_failed_and_skipped_one(api):
    uuid_ = add_notification(api, "alice/app")
    again = {add_delivery(api, uuid_, state=state) for state in ("failed", "failed", "skipped")}
    kept = add_delivery(api, uuid_, state="delivered")
    other = add_delivery(api, add_notification(api, "alice/app"), state="failed")

    response = _redeliver_all(api, uuid_)  # no body at all

    assert response.status_code == 202 and response.json() == {"count": 3}
    assert delivery_states(api, uuid_) == {**{i: "pending" for i in again}, kept: "delivered"}
    assert delivery_row(api, other).state == "failed"
    assert queue_length(api, api.settings.delivery_queue) == 3


def test_redeliver_all_since_a_time_and_of_some_states(api):
    uuid_ = add_notification(api, "alice/app")
    old = add_delivery(api, uuid_, state="failed", created_at=T0 - timedelta(days=1))
    new_failed = add_delivery(api, uuid_, state="failed", created_at=T0 + timedelta(hours=1))
    new_skipped = add_delivery(api, uuid_, state="skipped", created_at=T0 + timedelta(hours=2))

    response = _redeliver_all(api, uuid_, {"since": T0.isoformat(), "states": ["failed"]})

    assert response.json() == {"count": 1}
    assert delivery_states(api, uuid_) == {old: "failed", new_failed: "pending",
                                           new_skipped: "skipped"}
    assert queue_length(api, api.settings.delivery_queue) == 1


BAD_BODIES = {
    "unknown key": {"before": T0.isoformat()},
    "time without zone": {"since": "2024-05-01T12:00:00"},
    "not a time": {"since": "yesterday"},
    "a state that cannot go again": {"states": ["delivered"]},
    "no states": {"states": []},
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_bad_redeliver_all_is_400_and_changes_nothing(api, body):
    uuid_ = add_notification(api, "alice/app")
    add_delivery(api, uuid_, state="failed")
    before = snapshot(api)

    assert_error(_redeliver_all(api, uuid_, body), 400, "invalid_request")
    assert snapshot(api) == before
