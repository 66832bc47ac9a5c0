"""In-app notifications on PostgreSQL and SQLite: the quay_notification method's config check
and send, the inbox, dismissing, and the notice to admins when a notification is disabled."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from notifier import directory
from notifier.db import transaction
from notifier.errors import (
    InvalidInput,
    InvalidNotificationConfig,
    NotFound,
    PermanentDeliveryError,
)
from notifier.inapp import DISABLED_KIND, list_inbox, notify_disabled, set_dismissed
from notifier.methods import DeliveryContext, Services, get_method
from notifier.models import InAppNotification, utcnow
from notifier.notifications import create_notification, get_notification

PUSH = {"updated_tags": ["v1"]}


@pytest.fixture
def ns(factory, unique_repo) -> str:
    """The repository's namespace: an organization <ns> with admin <ns>-boss, team owners
    (<ns>-alice, <ns>-bob), and users <ns>-carol and <ns>-outsider (PostgreSQL is shared by the
    whole session, so every name is this test's own)."""
    namespace = unique_repo.split("/")[0]
    with transaction(factory) as session:
        for name in ("boss", "alice", "bob", "carol", "outsider"):
            directory.save_user(session, f"{namespace}-{name}")
        directory.save_organization(session, namespace, admins=[f"{namespace}-boss"])
        directory.save_team(session, namespace, "owners",
                            members=[f"{namespace}-alice", f"{namespace}-bob"])
    return namespace


def target(kind: str, name: str) -> dict:
    return {"target": {"kind": kind, "name": name}}


def create(factory, repository: str, config: dict) -> str:
    with transaction(factory) as session:
        return create_notification(session, repository, "repo_push", "quay_notification",
                                   config).uuid


def send(factory, settings, repository: str, config: dict, *, delivery_id: str | None = None,
         data: dict | None = None) -> str:
    """Send once through the method, as a delivery attempt would; returns the delivery id."""
    context = DeliveryContext(
        delivery_id=delivery_id or str(uuid.uuid4()), event="repo_push", repository=repository,
        event_data=data or {"repository": repository, **PUSH}, config=config, attempt=1,
        now=utcnow())
    services = Services(settings=settings, http=None, factory=factory)
    assert get_method("quay_notification").send(context, services) is None
    return context.delivery_id


def stored(factory, delivery_id: str) -> list[InAppNotification]:
    with factory() as session:
        return list(session.scalars(select(InAppNotification)
                                    .where(InAppNotification.delivery_id == delivery_id)
                                    .order_by(InAppNotification.recipient)))


def user_id(factory, name: str) -> int:
    with factory() as session:
        return directory.find_user(session, name).id


def inbox(factory, user_name: str, **page) -> tuple[list[dict], bool]:
    with factory() as session:
        return list_inbox(session, user_name, **page)


# --- config check --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("config", "says"),
    [
        pytest.param({}, "Missing target", id="no-target"),
        pytest.param({"target": "someone"}, "Missing target", id="target-not-an-object"),
        pytest.param({"target": {"name": "x"}}, "Missing target", id="no-kind"),
        pytest.param({"target": {"kind": "user"}}, "Missing target", id="no-name"),
        pytest.param(target("robot", "x"), "Unknown target kind 'robot': use user, org or team",
                     id="unknown-kind"),
        pytest.param(target("user", "nobody"), "Unknown user nobody", id="unknown-user"),
        pytest.param(target("org", "noorg"), "Unknown organization noorg", id="unknown-org"),
        pytest.param(target("team", "nobody"), "Unknown team nobody", id="unknown-team"),
    ],
)
def test_a_bad_target_is_refused_with_quays_message(factory, unique_repo, ns, config, says):
    with pytest.raises(InvalidNotificationConfig) as raised:
        create(factory, unique_repo, config)

    assert str(raised.value) == says


def test_an_organization_other_than_the_namespace_is_refused(factory, unique_repo, ns):
    with transaction(factory) as session:
        directory.save_organization(session, f"{ns}-other")

    with pytest.raises(InvalidNotificationConfig) as raised:
        create(factory, unique_repo, target("org", f"{ns}-other"))

    assert str(raised.value) == "Organization name must match repository namespace"


def test_a_team_is_looked_up_in_the_repository_namespace(factory, ns):
    with transaction(factory) as session:
        directory.save_organization(session, f"{ns}-other")
        directory.save_team(session, f"{ns}-other", "devs")

    with pytest.raises(InvalidNotificationConfig) as raised:
        create(factory, f"{ns}/web", target("team", "devs"))

    assert str(raised.value) == "Unknown team devs"


@pytest.mark.parametrize("kind", ["user", "org", "team"])
def test_a_good_target_is_stored_as_given(factory, unique_repo, ns, kind):
    name = {"user": f"{ns}-carol", "org": ns, "team": "owners"}[kind]
    config = {"target": {"kind": kind, "name": name, "avatar": "kept"}}

    notification_uuid = create(factory, unique_repo, config)

    with factory() as session:
        assert get_notification(session, notification_uuid).config == config


# --- send ----------------------------------------------------------------------------------------

def test_a_user_target_notifies_that_user(factory, settings, unique_repo, ns):
    data = {"repository": unique_repo, **PUSH}

    delivery_id = send(factory, settings, unique_repo, target("user", f"{ns}-carol"), data=data)

    [row] = stored(factory, delivery_id)
    carol = user_id(factory, f"{ns}-carol")
    assert (row.user_id, row.organization_id, row.recipient) == (carol, None, f"user:{carol}")
    assert (row.kind, row.metadata_, row.dismissed) == ("repo_push", data, False)


def test_a_team_target_notifies_each_current_member(factory, settings, unique_repo, ns):
    config = target("team", "owners")
    create(factory, unique_repo, config)
    with transaction(factory) as session:  # membership changes after the notification exists
        directory.save_team(session, ns, "owners", members=[f"{ns}-bob", f"{ns}-carol"])

    rows = stored(factory, send(factory, settings, unique_repo, config))

    assert sorted(row.user_id for row in rows) == sorted(
        user_id(factory, f"{ns}-{name}") for name in ("bob", "carol"))
    assert all(row.organization_id is None for row in rows)


def test_an_organization_target_stores_one_row_for_the_organization(factory, settings,
                                                                     unique_repo, ns):
    rows = stored(factory, send(factory, settings, unique_repo, target("org", ns)))

    with factory() as session:
        organization = directory.find_organization(session, ns)
    assert [(row.organization_id, row.user_id, row.recipient) for row in rows] == [
        (organization.id, None, f"org:{organization.id}")]


def test_a_retried_delivery_notifies_no_one_twice(factory, settings, unique_repo, ns):
    config = target("team", "owners")
    delivery_id = send(factory, settings, unique_repo, config)

    send(factory, settings, unique_repo, config, delivery_id=delivery_id)

    assert len(stored(factory, delivery_id)) == 2


@pytest.mark.parametrize(("config", "remove"), [
    (lambda ns: target("user", f"{ns}-carol"),
     lambda session, ns: directory.remove_user(session, f"{ns}-carol")),
    (lambda ns: target("team", "owners"),
     lambda session, ns: directory.remove_team(session, ns, "owners")),
    (lambda ns: target("org", ns),
     lambda session, ns: directory.remove_organization(session, ns)),
], ids=["user", "team", "org"])
def test_a_target_gone_since_creation_fails_for_good(factory, settings, unique_repo, ns, config,
                                                     remove):
    config = config(ns)
    create(factory, unique_repo, config)
    with transaction(factory) as session:
        remove(session, ns)
    delivery_id = str(uuid.uuid4())

    with pytest.raises(PermanentDeliveryError) as raised:
        send(factory, settings, unique_repo, config, delivery_id=delivery_id)

    assert raised.value.kind == "target_gone"
    assert "target gone: no " in str(raised.value)
    assert stored(factory, delivery_id) == []


# --- the inbox -----------------------------------------------------------------------------------

def test_the_inbox_shows_own_rows_newest_first_in_quays_shape(factory, settings, unique_repo, ns):
    first = send(factory, settings, unique_repo, target("user", f"{ns}-carol"))
    second = send(factory, settings, unique_repo, target("team", "owners"))
    send(factory, settings, unique_repo, target("user", f"{ns}-carol"))

    notes, additional = inbox(factory, f"{ns}-carol")

    assert additional is False
    assert len(notes) == 2
    assert set(notes[0]) == {"id", "organization", "kind", "created", "metadata", "dismissed"}
    assert notes[1]["id"] == stored(factory, first)[0].uuid
    assert notes[0]["created"] >= notes[1]["created"]
    assert datetime.fromisoformat(notes[0]["created"]).tzinfo is not None
    assert (notes[0]["organization"], notes[0]["kind"], notes[0]["dismissed"]) == (
        None, "repo_push", False)
    assert notes[0]["metadata"] == {"repository": unique_repo, **PUSH}
    [alices] = [row for row in stored(factory, second)
                if row.user_id == user_id(factory, f"{ns}-alice")]
    assert [note["id"] for note in inbox(factory, f"{ns}-alice")[0]] == [alices.uuid]


def test_organization_rows_show_to_its_admins_only(factory, settings, unique_repo, ns):
    send(factory, settings, unique_repo, target("org", ns))

    boss_notes, _ = inbox(factory, f"{ns}-boss")

    assert [note["organization"] for note in boss_notes] == [ns]
    assert inbox(factory, f"{ns}-alice") == ([], False)  # a member, not an admin
    assert inbox(factory, f"{ns}-outsider") == ([], False)


def test_the_inbox_pages(factory, settings, unique_repo, ns):
    sent = [send(factory, settings, unique_repo, target("user", f"{ns}-carol")) for _ in range(3)]
    newest_first = [stored(factory, delivery_id)[0].uuid for delivery_id in reversed(sent)]

    first_page = inbox(factory, f"{ns}-carol", page=1, limit=2)
    last_page = inbox(factory, f"{ns}-carol", page=2, limit=2)

    assert ([note["id"] for note in first_page[0]], first_page[1]) == (newest_first[:2], True)
    assert ([note["id"] for note in last_page[0]], last_page[1]) == (newest_first[2:], False)


@pytest.mark.parametrize(("page", "says"), [
    ({"page": 0}, "page must be"), ({"limit": 0}, "limit must be"),
    ({"limit": 101}, "limit must be"),
])
def test_a_bad_page_is_refused(factory, ns, page, says):
    with pytest.raises(InvalidInput, match=says):
        inbox(factory, f"{ns}-carol", **page)


def test_an_unknown_user_has_no_inbox(factory, ns):
    with pytest.raises(NotFound, match=f"no user named '{ns}-nobody'"):
        inbox(factory, f"{ns}-nobody")


def dismiss(factory, user_name: str, notification_id: str, dismissed: bool = True) -> dict:
    with transaction(factory) as session:
        return set_dismissed(session, user_name, notification_id, dismissed)


def test_dismissing_and_restoring(factory, settings, unique_repo, ns):
    [row] = stored(factory, send(factory, settings, unique_repo, target("user", f"{ns}-carol")))

    assert dismiss(factory, f"{ns}-carol", row.uuid)["dismissed"] is True
    assert inbox(factory, f"{ns}-carol")[0][0]["dismissed"] is True
    assert dismiss(factory, f"{ns}-carol", row.uuid, False)["dismissed"] is False
    assert inbox(factory, f"{ns}-carol")[0][0]["dismissed"] is False


def test_an_organization_row_is_dismissed_by_its_admin(factory, settings, unique_repo, ns):
    [row] = stored(factory, send(factory, settings, unique_repo, target("org", ns)))

    view = dismiss(factory, f"{ns}-boss", row.uuid)

    assert (view["id"], view["organization"], view["dismissed"]) == (row.uuid, ns, True)


@pytest.mark.parametrize("who", ["outsider", "alice"])
def test_only_what_a_user_sees_can_be_dismissed(factory, settings, unique_repo, ns, who):
    [own] = stored(factory, send(factory, settings, unique_repo, target("user", f"{ns}-carol")))
    [org_row] = stored(factory, send(factory, settings, unique_repo, target("org", ns)))

    for notification_id in (own.uuid, org_row.uuid, str(uuid.uuid4())):
        with pytest.raises(NotFound, match=f"no notification {notification_id}"):
            dismiss(factory, f"{ns}-{who}", notification_id)
    assert inbox(factory, f"{ns}-carol")[0][0]["dismissed"] is False


def test_dismissed_must_be_a_boolean(factory, settings, unique_repo, ns):
    [row] = stored(factory, send(factory, settings, unique_repo, target("user", f"{ns}-carol")))

    with pytest.raises(InvalidInput, match="dismissed must be true or false"):
        dismiss(factory, f"{ns}-carol", row.uuid, "yes")


# --- the notice when a notification is disabled -------------------------------------------------

def disable(factory, notification_uuid: str, disabled_at: datetime) -> None:
    with transaction(factory) as session:
        notification = get_notification(session, notification_uuid)
        notification.enabled = False
        notification.disabled_reason = "3 failed deliveries in a row; last error: HTTP 500"
        notify_disabled(session, notification, disabled_at=disabled_at)


def disabled_notices(factory, user_name: str) -> list[dict]:
    return [note for note in inbox(factory, user_name)[0] if note["kind"] == DISABLED_KIND]


def test_every_repository_admin_is_told_once_per_disable(factory, unique_repo, ns):
    with transaction(factory) as session:
        directory.grant(session, unique_repo, "admin", team=f"{ns}/owners")
        directory.grant(session, unique_repo, "write", user=f"{ns}-carol")
    notification_uuid = create(factory, unique_repo, target("org", ns))
    disabled_at = utcnow()

    disable(factory, notification_uuid, disabled_at)
    disable(factory, notification_uuid, disabled_at)  # the same event again

    admins = [f"{ns}-{name}" for name in ("boss", "alice", "bob")]
    for admin in admins:
        [notice] = disabled_notices(factory, admin)
        assert notice["metadata"] == {
            "notification_uuid": notification_uuid, "title": None, "event": "repo_push",
            "method": "quay_notification", "repository": unique_repo,
            "reason": "3 failed deliveries in a row; last error: HTTP 500"}
    assert disabled_notices(factory, f"{ns}-carol") == []
    assert disabled_notices(factory, f"{ns}-outsider") == []

    disable(factory, notification_uuid, disabled_at + timedelta(hours=1))
    assert all(len(disabled_notices(factory, admin)) == 2 for admin in admins)
