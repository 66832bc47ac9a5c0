"""PUT /api/v1/repository/<repo>/notification/<uuid>: an edit, checked exactly as a create."""

from __future__ import annotations

import pytest

from tests.api_seed import (PERMISSION_TABLE, add_notification, assert_denied, assert_error,
                            notification_path, notification_row, snapshot)

HOOK = "http://127.0.0.1:9/hook"


def put(api, persona: str, repository: str, uuid: str, body: dict):
    return api.call(persona, "PUT", notification_path(repository, uuid), json=body)


def test_put_replaces_title_config_and_event_config(api):
    uuid = add_notification(api, "acme/web", event="build_success")
    answer = put(api, "org_admin", "acme/web", uuid, {
        "config": {"url": "http://127.0.0.1:9/other"}, "eventConfig": {"ref-regex": "refs/tags/"},
        "title": "Releases"})
    assert answer.status_code == 200, answer.text
    view = answer.json()
    assert view["title"] == "Releases" and view["event_config"] == {"ref-regex": "refs/tags/"}
    assert view["config"]["url"] == "http://127.0.0.1:9/other"
    assert view["event"] == "build_success" and view["uuid"] == uuid
    stored = notification_row(api, uuid)
    assert stored.title == "Releases" and stored.config["url"] == "http://127.0.0.1:9/other"


def test_put_keeps_the_webhook_signing_secret(api):
    uuid = add_notification(api, "acme/web")
    secret = notification_row(api, uuid).config["secret"]
    assert put(api, "org_admin", "acme/web", uuid, {"config": {"url": HOOK}}).status_code == 200
    assert notification_row(api, uuid).config["secret"] == secret
    shown = api.call("org_admin", "GET", notification_path("acme/web", uuid)).json()
    assert put(api, "org_admin", "acme/web", uuid,
               {"config": shown["config"], "event": "repo_push",
                "method": "webhook"}).status_code == 200  # what GET shows, sent back
    assert notification_row(api, uuid).config["secret"] == secret


def test_put_of_a_masked_secret_keeps_the_stored_one(api):
    url = "https://127.0.0.1:9/services/T000/B000/verysecretvalue"
    uuid = add_notification(api, "acme/web", method="slack", config={"url": url})
    shown = api.call("org_admin", "GET", notification_path("acme/web", uuid)).json()["config"]
    assert shown["url"] != url
    assert put(api, "org_admin", "acme/web", uuid, {"config": shown}).status_code == 200
    assert notification_row(api, uuid).config["url"] == url


@pytest.mark.parametrize("body, message", [
    ({"config": {"url": HOOK}, "eventConfig": {"ref-regex": "("}}, "Invalid ref-regex"),
    ({"config": {"url": "http://10.0.0.1/hook"}}, "Invalid webhook URL"),
    ({"config": {}}, "Missing webhook URL"),
    ({"config": {"url": HOOK}, "eventConfig": {"level": 1}}, "Unknown eventConfig key 'level'"),
    ({"config": {"url": HOOK}, "event": "repo_push"}, "event of a notification cannot change"),
    ({"config": {"url": HOOK}, "method": "slack"}, "method of a notification cannot change"),
    ({"config": {"url": HOOK}, "uuid": "x"}, "uuid"),
])
def test_put_refuses_what_create_refuses_and_changes_nothing(api, body, message):
    uuid = add_notification(api, "acme/web", event="build_success")
    before = snapshot(api)
    answer = put(api, "org_admin", "acme/web", uuid, body)
    assert message in assert_error(answer, 400)["error_message"]
    assert snapshot(api) == before


@pytest.mark.parametrize("case", PERMISSION_TABLE, ids=lambda c: c.id)
def test_put_is_for_repository_admins_only(api, case):
    uuid = add_notification(api, case.repository)
    before = snapshot(api)
    answer = put(api, case.persona, case.repository, uuid, {"config": {"url": HOOK},
                                                            "title": "changed"})
    if case.denied:
        assert_denied(api, case, answer, before)
    else:
        assert answer.status_code == 200 and notification_row(api, uuid).title == "changed"


def test_put_with_another_repositorys_uuid_is_404(api):
    uuid = add_notification(api, "alice/app")
    answer = put(api, "org_admin", "acme/web", uuid, {"config": {"url": HOOK}})
    assert_error(answer, 404, "not_found")
    assert notification_row(api, uuid).config["url"] == HOOK
