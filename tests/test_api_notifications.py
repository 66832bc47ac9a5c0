"""Quay's repository-notification calls and the webhook secret calls, over HTTP (PostgreSQL)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import timedelta

import pytest

from notifier.db import transaction
from notifier.methods.webhook import is_valid_secret, signing_secrets
from notifier.models import AuthorizedEmail, utcnow
from tests.api_seed import (
    HOOK_URL,
    PERMISSION_TABLE,
    WEBHOOK,
    add_delivery,
    add_notification,
    assert_denied,
    assert_error,
    fanout_messages,
    notification_path,
    notification_row,
    queue_length,
    snapshot,
    unreachable_broker,
)

UNKNOWN_UUID = "00000000-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class Call:
    """One notification call: its HTTP method, path under ``.../notification/``, answer."""

    name: str
    method: str
    rest: str  # after ".../notification/"; {uuid} is the notification's
    ok: int
    body: dict | None = None

    def path(self, repository: str, uuid_: str) -> str:
        return notification_path(repository, rest=self.rest.format(uuid=uuid_))


CALLS = [
    Call("list", "GET", "", 200),
    Call("create", "POST", "", 201, WEBHOOK),
    Call("get", "GET", "{uuid}", 200),
    Call("delete", "DELETE", "{uuid}", 204),
    Call("reset", "POST", "{uuid}", 204),
    Call("test", "POST", "{uuid}/test", 200),
    Call("read_secret", "GET", "{uuid}/secret", 200),
    Call("rotate_secret", "POST", "{uuid}/secret", 200),
]
UUID_CALLS = [call for call in CALLS if "{uuid}" in call.rest]


@pytest.mark.parametrize("case", PERMISSION_TABLE, ids=lambda case: case.id)
@pytest.mark.parametrize("call", CALLS, ids=lambda call: call.name)
def test_only_repository_admins_may_call(api, call, case):
    uuid_ = add_notification(api, case.repository)
    before = snapshot(api)
    response = api.call(case.persona, call.method, call.path(case.repository, uuid_),
                        json=call.body)
    if case.denied:
        assert_denied(api, case, response, before)
    else:
        assert response.status_code == call.ok, response.text


@pytest.mark.parametrize("call", UUID_CALLS, ids=lambda call: call.name)
def test_a_uuid_of_another_repository_is_not_found(api, call):
    theirs = add_notification(api, "acme/web", number_of_failures=2, enabled=False)
    before = snapshot(api)

    response = api.call("owner", call.method, call.path("alice/app", theirs))

    body = assert_error(response, 404, "not_found")
    assert body["error_message"] == f"no notification {theirs}"  # as for a uuid never made
    assert HOOK_URL not in response.text
    assert snapshot(api) == before


@pytest.mark.parametrize("call", UUID_CALLS, ids=lambda call: call.name)
def test_an_unknown_uuid_is_not_found(api, call):
    response = api.call("owner", call.method, call.path("alice/app", UNKNOWN_UUID))
    assert assert_error(response, 404)["error_message"] == f"no notification {UNKNOWN_UUID}"


# --- create, list, get ---------------------------------------------------------------------------

@pytest.mark.parametrize("trailing", ["/", ""], ids=["slash", "no-slash"])
def test_list_and_create_answer_both_slash_forms_without_redirect(api, trailing):
    path = notification_path("alice/app").rstrip("/") + trailing

    created = api.call("owner", "POST", path, json=WEBHOOK, follow_redirects=False)
    listed = api.call("owner", "GET", path, follow_redirects=False)

    assert created.status_code == 201, created.text
    assert listed.status_code == 200, listed.text
    assert [n["uuid"] for n in listed.json()["notifications"]] == [created.json()["uuid"]]


def test_create_answers_quays_view_and_get_and_list_show_it(api):
    body = {"event": "build_success", "method": "webhook", "title": "builds",
            "config": {"url": HOOK_URL}, "eventConfig": {"ref-regex": "refs/heads/main"}}

    created = api.call("owner", "POST", notification_path("alice/app"), json=body)

    assert created.status_code == 201, created.text
    view = created.json()
    assert {key: view[key] for key in ("title", "event", "method", "event_config",
                                       "number_of_failures", "enabled", "last_attempt",
                                       "last_error")} == {
        "title": "builds", "event": "build_success", "method": "webhook",
        "event_config": {"ref-regex": "refs/heads/main"}, "number_of_failures": 0,
        "enabled": True, "last_attempt": None, "last_error": None}
    got = api.call("owner", "GET", notification_path("alice/app", view["uuid"]))
    assert got.status_code == 200 and got.json() == view
    listed = api.call("owner", "GET", notification_path("alice/app")).json()
    assert listed == {"notifications": [view]}


def test_the_view_shows_the_newest_delivery(api):
    uuid_ = add_notification(api, "alice/app")
    add_delivery(api, uuid_, state="delivered", created_at=utcnow() - timedelta(hours=1))
    add_delivery(api, uuid_, state="failed", created_at=utcnow())

    view = api.call("owner", "GET", notification_path("alice/app", uuid_)).json()

    assert view["last_error"] == "HTTP 500" and view["last_attempt"] is not None


def test_views_mask_the_webhook_secret_and_url_credentials(api):
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    config = {"url": "http://hook:pa55w0rd@127.0.0.1:9/x?token=t0ps3cret", "secret": secret}

    created = api.call("owner", "POST", notification_path("alice/app"),
                       json={**WEBHOOK, "config": config})
    got = api.call("owner", "GET", notification_path("alice/app", created.json()["uuid"]))
    listed = api.call("owner", "GET", notification_path("alice/app"))

    for response in (created, got, listed):
        assert response.status_code in (200, 201)
        for hidden in (secret, "pa55w0rd", "t0ps3cret"):
            assert hidden not in response.text
    assert notification_row(api, created.json()["uuid"]).config["secret"] == secret


def test_a_team_admin_creates_on_the_team_repository(api):
    created = api.call("team_admin", "POST", notification_path("acme/web"), json=WEBHOOK)
    assert created.status_code == 201
    assert notification_row(api, created.json()["uuid"]).repository == "acme/web"


def test_an_authorized_email_may_be_used(api):
    with transaction(api.client.app.state.factory) as session:
        session.add(AuthorizedEmail(repository="alice/app", email="ops@example.com",
                                    confirmed=True))
    body = {"event": "repo_push", "method": "email", "config": {"email": "ops@example.com"}}
    assert api.call("owner", "POST", notification_path("alice/app"), json=body).status_code == 201


BAD_BODIES = {
    "unknown key": ({**WEBHOOK, "colour": "red"}, "colour"),
    "event_config spelt as the view": ({**WEBHOOK, "event_config": {}}, "event_config"),
    "no event": ({"method": "webhook", "config": {"url": HOOK_URL}}, "event"),
    "no config": ({"event": "repo_push", "method": "webhook"}, "config"),
    "config not an object": ({**WEBHOOK, "config": "http://x"}, "config"),
    "body not an object": ([WEBHOOK], "body"),
    "unknown event": ({**WEBHOOK, "event": "repo_pull"}, "Unknown event 'repo_pull'"),
    "unknown method": ({**WEBHOOK, "method": "fax"}, "Unknown notification method 'fax'"),
    "webhook without url": ({**WEBHOOK, "config": {}}, "Missing webhook URL"),
    "webhook ftp url": ({**WEBHOOK, "config": {"url": "ftp://127.0.0.1/x"}},
                        "Invalid webhook URL"),
    "webhook private url": ({**WEBHOOK, "config": {"url": "http://10.1.2.3/x"}},
                            "Invalid webhook URL"),
    "webhook bad secret": ({**WEBHOOK, "config": {"url": HOOK_URL, "secret": "s3cret"}},
                           "Invalid webhook secret"),
    "slack without url": ({**WEBHOOK, "method": "slack", "config": {}},
                          "Missing Slack Callback URL"),
    "slack http url": ({**WEBHOOK, "method": "slack", "config": {"url": "http://127.0.0.1/x"}},
                       "Invalid Slack Callback URL"),
    "flowdock without token": ({**WEBHOOK, "method": "flowdock", "config": {}},
                               "Missing Flowdock API Token"),
    "hipchat without token": ({**WEBHOOK, "method": "hipchat", "config": {"room_id": "1"}},
                              "Missing Hipchat Room Notification Token"),
    "hipchat bad room": ({**WEBHOOK, "method": "hipchat",
                          "config": {"room_id": "r1", "notification_token": "t"}},
                         "Missing Hipchat Room ID"),
    "email without address": ({**WEBHOOK, "method": "email", "config": {}},
                              "Missing e-mail address"),
    "email not authorized": ({**WEBHOOK, "method": "email",
                              "config": {"email": "x@example.com"}},
                             "is not authorized to receive notifications"),
    "in-app without target": ({**WEBHOOK, "method": "quay_notification", "config": {}},
                              "Missing target"),
    "in-app other org": ({**WEBHOOK, "method": "quay_notification",
                          "config": {"target": {"kind": "org", "name": "acme"}}},
                         "Organization name must match repository namespace"),
    "bad ref-regex": ({**WEBHOOK, "event": "build_success", "eventConfig": {"ref-regex": "(["}},
                      "Invalid ref-regex"),
    "filter the event lacks": ({**WEBHOOK, "eventConfig": {"level": 1}},
                               "Unknown eventConfig key 'level'"),
    "long title": ({**WEBHOOK, "title": "t" * 256}, "title"),
}


@pytest.mark.parametrize("body, message", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_bad_create_is_400_and_stores_nothing(api, body, message):
    response = api.call("owner", "POST", notification_path("alice/app"), json=body)

    assert message in assert_error(response, 400, "invalid_request")["error_message"]
    assert api.call("owner", "GET", notification_path("alice/app")).json() == {
        "notifications": []}


@pytest.mark.parametrize(("content", "says"), [
    (b"", "body"), (b"{not json", "Malformed JSON body"),
    (b'{"event": "repo_push",', "Malformed JSON body")], ids=["missing", "malformed", "truncated"])
def test_a_create_without_a_json_body_is_400(api, content, says):
    response = api.client.post(notification_path("alice/app"), content=content,
                               headers={**api.headers("owner"),
                                        "Content-Type": "application/json"})

    assert says in assert_error(response, 400, "invalid_request")["error_message"]
    assert snapshot(api)["notifications"] == []


def test_a_body_over_the_limit_is_413_and_stores_nothing(api):
    padding = "x" * api.settings.api_max_body_bytes
    response = api.call("owner", "POST", notification_path("alice/app"),
                        json={**WEBHOOK, "title": padding})

    assert_error(response, 413, "request_too_large")
    assert snapshot(api)["notifications"] == []


# --- delete, reset, test -------------------------------------------------------------------------

def test_delete_removes_the_notification_and_its_deliveries(api):
    uuid_ = add_notification(api, "alice/app")
    add_delivery(api, uuid_)

    response = api.call("owner", "DELETE", notification_path("alice/app", uuid_))

    assert response.status_code == 204 and response.content == b""
    assert notification_row(api, uuid_) is None and snapshot(api)["deliveries"] == []
    assert api.call("owner", "GET", notification_path("alice/app", uuid_)).status_code == 404
    again = api.call("owner", "DELETE", notification_path("alice/app", uuid_))
    assert again.status_code == 404


def test_reset_clears_failures_and_enables(api):
    uuid_ = add_notification(api, "alice/app", number_of_failures=3, enabled=False,
                             disabled_reason="3 failed deliveries")

    response = api.call("owner", "POST", notification_path("alice/app", uuid_))

    assert response.status_code == 204 and response.content == b""
    row = notification_row(api, uuid_)
    assert (row.number_of_failures, row.enabled, row.disabled_reason) == (0, True, None)


def test_test_publishes_the_sample_event_to_this_notification_only(api):
    uuid_ = add_notification(api, "alice/app", event="build_failure", enabled=False)

    response = api.call("owner", "POST", notification_path("alice/app", uuid_, "/test"))

    assert response.status_code == 200 and response.json() == {}
    assert queue_length(api, api.settings.fanout_queue) == 1
    [message] = fanout_messages(api)
    assert message["test_notification"] == uuid_
    assert (message["repository"], message["event"]) == ("alice/app", "build_failure")
    assert message["data"]["error_message"] == "This is a fake error message"


def test_test_answers_503_when_the_broker_is_down(api):
    uuid_ = add_notification(api, "alice/app")

    with unreachable_broker(api) as down:
        response = down.call("owner", "POST", notification_path("alice/app", uuid_, "/test"))

    assert "nothing was enqueued" in assert_error(response, 503, "unavailable")["error_message"]


# --- the webhook secret --------------------------------------------------------------------------

def test_read_secret_answers_it_in_clear(api):
    uuid_ = add_notification(api, "alice/app")

    response = api.call("org_admin", "GET", notification_path("alice/app", uuid_, "/secret"))
    assert response.status_code == 403
    response = api.call("owner", "GET", notification_path("alice/app", uuid_, "/secret"))

    assert response.status_code == 200
    assert response.json() == {"secret": notification_row(api, uuid_).config["secret"]}
    assert response.headers["Cache-Control"] == "no-store"


def test_rotate_gives_a_new_secret_and_the_old_one_still_signs(api):
    uuid_ = add_notification(api, "alice/app")
    old = notification_row(api, uuid_).config["secret"]

    response = api.call("owner", "POST", notification_path("alice/app", uuid_, "/secret"))

    assert response.status_code == 200
    new = response.json()["secret"]
    assert is_valid_secret(new) and new != old
    config = notification_row(api, uuid_).config
    assert signing_secrets(config, utcnow()) == [new, old]
    assert signing_secrets(config, utcnow() + timedelta(hours=25)) == [new]
    read = api.call("owner", "GET", notification_path("alice/app", uuid_, "/secret"))
    assert read.json() == {"secret": new}


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_secret_calls_refuse_methods_without_a_signing_secret(api, method):
    uuid_ = add_notification(api, "alice/app", method="slack",
                             config={"url": "https://127.0.0.1/services/T0/B0/XYZ"})
    before = snapshot(api)

    response = api.call("owner", method, notification_path("alice/app", uuid_, "/secret"))

    assert "has no signing secret" in assert_error(response, 400)["error_message"]
    assert "XYZ" not in response.text
    assert snapshot(api) == before
