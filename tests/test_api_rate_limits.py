"""Where a person can make the service act, limits per requester (429 with Retry-After) and
caps: test notifications, redeliveries, notifications per repository. E-mail confirmations are
in test_api_emails."""

from __future__ import annotations

import pytest

from tests.api_seed import add_delivery, add_notification, assert_error, notification_path


def with_settings(api, **changes):
    api.client.app.state.settings = api.settings.model_copy(update=changes)


def assert_rate_limited(response, what: str) -> None:
    body = assert_error(response, 429, "rate_limited")
    assert body["error_message"].startswith(f"Too many {what} asked for by one user: at most ")
    assert 1 <= int(response.headers["Retry-After"]) <= 3600


def test_test_notifications_are_limited_per_requester(api):
    with_settings(api, test_notifications_per_requester_per_hour=2)
    uuid_ = add_notification(api, "alice/app")
    path = notification_path("alice/app", uuid_, "/test")

    assert [api.call("owner", "POST", path).status_code for _ in range(2)] == [200, 200]
    assert_rate_limited(api.call("owner", "POST", path), "test notifications")
    other = add_notification(api, "acme/web")
    assert api.call("org_admin", "POST", notification_path("acme/web", other, "/test")) \
        .status_code == 200  # another requester has their own count


@pytest.mark.parametrize("rest", ["/redeliver", "/deliveries/{delivery}/redeliver"])
def test_redeliveries_are_limited_per_requester(api, rest):
    with_settings(api, redeliveries_per_requester_per_hour=1)
    uuid_ = add_notification(api, "alice/app")
    deliveries = [add_delivery(api, uuid_) for _ in range(2)]
    path = notification_path("alice/app", uuid_, rest.format(delivery=deliveries[0]))

    assert api.call("owner", "POST", path).status_code == 202
    path = notification_path("alice/app", uuid_, rest.format(delivery=deliveries[1]))
    assert_rate_limited(api.call("owner", "POST", path), "redeliveries")


def test_a_bulk_redelivery_sends_at_most_the_configured_number(api):
    with_settings(api, redelivery_max_deliveries=2)
    uuid_ = add_notification(api, "alice/app")
    for _ in range(3):
        add_delivery(api, uuid_)
    path = notification_path("alice/app", uuid_, "/redeliver")

    assert api.call("owner", "POST", path).json() == {"count": 2}
    assert api.call("owner", "POST", path).json() == {"count": 1}


def test_notifications_per_repository_are_capped(api):
    with_settings(api, max_notifications_per_repository=2)
    body = {"event": "repo_push", "method": "webhook",
            "config": {"url": "http://127.0.0.1:9/hook"}}
    path = notification_path("alice/app")

    assert [api.call("owner", "POST", path, json=body).status_code for _ in range(2)] == [201,
                                                                                         201]
    refused = assert_error(api.call("owner", "POST", path, json=body), 400)
    assert refused["error_message"] == (
        "Repository alice/app already has 2 notifications, the most allowed "
        "(NOTIFIER_MAX_NOTIFICATIONS_PER_REPOSITORY); delete one first")
    assert api.call("org_admin", "POST", notification_path("acme/web"), json=body) \
        .status_code == 201
