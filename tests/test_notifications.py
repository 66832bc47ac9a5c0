"""Creating notifications, on PostgreSQL and SQLite: what is stored, and what is refused."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from notifier.db import transaction
from notifier.errors import (
    InvalidInput,
    InvalidNotificationConfig,
    NotFound,
    UnknownEvent,
    UnknownMethod,
)
from notifier.models import Notification, utcnow
from notifier.notifications import create_notification, get_notification

HOOK = {"url": "https://hooks.example.com/in"}


def create(factory, repository: str, **overrides) -> str:
    """Create one notification (webhook on build_success unless overridden); returns its uuid."""
    arguments = {"event": "build_success", "method": "webhook", "config": HOOK, **overrides}
    with transaction(factory) as session:
        return create_notification(session, repository, **arguments).uuid


def stored_count(factory, repository: str) -> int:
    with factory() as session:
        return session.scalar(
            select(func.count()).select_from(Notification)
            .where(Notification.repository == repository))


def test_the_stored_fields(factory, unique_repo):
    before = utcnow()
    notification_uuid = create(factory, unique_repo, event_config={"ref-regex": "refs/heads/main"},
                               title="CI hook")

    with factory() as session:
        stored = get_notification(session, notification_uuid)

    assert uuid.UUID(stored.uuid) and stored.uuid == notification_uuid
    assert (stored.repository, stored.event, stored.method, stored.title) == (
        unique_repo, "build_success", "webhook", "CI hook")
    assert stored.config["url"] == HOOK["url"]
    assert stored.config["secret"].startswith("whsec_")
    assert stored.event_config == {"ref-regex": "refs/heads/main"}
    assert (stored.number_of_failures, stored.enabled, stored.disabled_reason) == (0, True, None)
    assert before - timedelta(seconds=1) <= stored.created_at <= utcnow() + timedelta(seconds=1)


def test_defaults_and_one_row_per_create(factory, unique_repo):
    first = create(factory, unique_repo)
    second = create(factory, unique_repo)

    with factory() as session:
        stored = get_notification(session, first)
    assert first != second
    assert (stored.event_config, stored.title) == ({}, None)
    assert stored_count(factory, unique_repo) == 2


def test_a_given_secret_is_stored_as_given(factory, unique_repo):
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    notification_uuid = create(factory, unique_repo, config={**HOOK, "secret": secret})

    with factory() as session:
        assert get_notification(session, notification_uuid).config["secret"] == secret


def test_an_unknown_uuid_is_not_found(factory):
    with factory() as session, pytest.raises(NotFound):
        get_notification(session, str(uuid.uuid4()))


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"method": "x"}, UnknownMethod, "Unknown notification method 'x'"),
        ({"event": "x"}, UnknownEvent, "Unknown event 'x'"),
        ({"config": "https://hooks.example.com/in"}, InvalidNotificationConfig,
         "config must be a JSON object"),
        ({"config": [HOOK]}, InvalidNotificationConfig, "config must be a JSON object"),
        ({"config": {}}, InvalidNotificationConfig, "Missing webhook URL"),
        ({"config": {"url": "ftp://example.com/"}}, InvalidNotificationConfig,
         "Invalid webhook URL"),
        ({"event_config": ["ref-regex"]}, InvalidNotificationConfig,
         "eventConfig must be a JSON object"),
        ({"event_config": {"ref-regex": "refs/(heads"}}, InvalidNotificationConfig,
         "Invalid ref-regex 'refs/(heads': missing ): refs/(heads; ref-regex uses RE2 syntax"),
        ({"event_config": {"level": 1}}, InvalidNotificationConfig,
         "Unknown eventConfig key 'level' for event 'build_success'"),
        ({"event": "vulnerability_found", "event_config": {"level": "Severe"}},
         InvalidNotificationConfig, "Invalid level 'Severe'"),
        ({"title": "t" * 256}, InvalidNotificationConfig, "title must be text"),
    ],
)
def test_a_refused_create_stores_nothing(factory, unique_repo, overrides, error, message):
    arguments = {"event": "build_success", "method": "webhook", "config": HOOK, **overrides}

    with factory() as session:
        with pytest.raises(error) as caught:
            create_notification(session, unique_repo, **arguments)
        session.commit()  # even a commit afterwards must find nothing to store

    assert str(caught.value).startswith(message)
    assert stored_count(factory, unique_repo) == 0


@pytest.mark.parametrize("make_bad", [lambda repo: repo.replace("/", "-"),
                                      lambda repo: repo.replace("/", "/ ")])
def test_a_bad_repository_is_refused(factory, unique_repo, make_bad):
    repository = make_bad(unique_repo)

    with pytest.raises(InvalidInput, match="namespace/name"):
        create(factory, repository)

    assert stored_count(factory, repository) == 0
