"""The in-app inbox over the API (as Quay): listing, paging, one notification, dismissing, and who
sees what; on the API personas' PostgreSQL copy."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from notifier.db import transaction
from notifier.directory import find_organization, find_user
from notifier.inapp import store_notifications
from notifier.models import InAppNotification
from tests.api_support import USERS

INBOX = "/api/v1/user/notifications"


def store(api, recipient: str, count: int = 1, *, organization: bool = False) -> list[str]:
    """``count`` notifications for a user (or an organization), oldest first; their ids."""
    find = find_organization if organization else find_user
    stored = []
    for number in range(count):
        delivery_id = str(uuid.uuid4())
        with transaction(api.client.app.state.factory) as session:
            store_notifications(session, [find(session, recipient)], kind="repo_push",
                                metadata={"number": number, "for": recipient},
                                delivery_id=delivery_id)
            stored.append(session.scalar(select(InAppNotification.uuid)
                                         .where(InAppNotification.delivery_id == delivery_id)))
    return stored


def inbox(api, persona: str, **params) -> dict:
    response = api.call(persona, "GET", INBOX, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def ids(page: dict) -> list[str]:
    return [row["id"] for row in page["notifications"]]


@pytest.fixture
def notes(api) -> dict[str, list[str]]:
    """Three notifications for rita, one for tina, one for organization acme (oscar's)."""
    return {"rita": store(api, "rita", 3), "tina": store(api, "tina"),
            "acme": store(api, "acme", organization=True)}


# --- who may call ------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "suffix", "body"), [
    ("GET", "", None), ("GET", "/{id}", None), ("PUT", "/{id}", {"dismissed": True}),
], ids=["list", "get", "dismiss"])
def test_an_inbox_is_for_users_not_services(api, notes, method, suffix, body):
    path = INBOX + suffix.format(id=notes["rita"][0])

    service = api.call("service", method, path, json=body)
    anonymous = api.call("none", method, path, json=body)

    assert (service.status_code, service.json()["error_type"]) == (403, "insufficient_scope")
    assert (anonymous.status_code, anonymous.json()["error_type"]) == (401, "invalid_token")
    assert api.call("reader", method, path, json=body).status_code == 200


@pytest.mark.parametrize("persona", list(USERS))
def test_every_user_may_read_their_inbox(api, persona):
    assert inbox(api, persona) == {"notifications": [], "additional": False}


@pytest.mark.parametrize("path", [INBOX, INBOX + "/"])
def test_both_forms_of_the_inbox_path_answer_without_a_redirect(api, notes, path):
    response = api.client.get(path, headers=api.headers("reader"), follow_redirects=False)

    assert response.status_code == 200
    assert ids(response.json()) == notes["rita"][::-1]


# --- what each one sees ------------------------------------------------------------------------

def test_a_user_sees_their_own_notifications_newest_first(api, notes):
    page = inbox(api, "reader")

    assert ids(page) == notes["rita"][::-1]
    assert page["additional"] is False
    newest = page["notifications"][0]
    assert set(newest) == {"id", "organization", "kind", "created", "metadata", "dismissed"}
    assert (newest["organization"], newest["kind"], newest["metadata"], newest["dismissed"]) == (
        None, "repo_push", {"number": 2, "for": "rita"}, False)


def test_an_organization_admin_sees_the_organizations_notifications(api, notes):
    [row] = inbox(api, "org_admin")["notifications"]

    assert (row["id"], row["organization"]) == (notes["acme"][0], "acme")


@pytest.mark.parametrize(("persona", "own"), [("reader", "rita"), ("team_admin", "tina"),
                                              ("owner", None)])
def test_others_do_not_see_the_organizations_notifications(api, notes, persona, own):
    assert ids(inbox(api, persona)) == (notes[own][::-1] if own else [])
    response = api.call(persona, "GET", f"{INBOX}/{notes['acme'][0]}")
    assert (response.status_code, response.json()["error_type"]) == (404, "not_found")


def test_one_notification_is_the_row_of_the_listing(api, notes):
    [listed] = inbox(api, "org_admin")["notifications"]

    response = api.call("org_admin", "GET", f"{INBOX}/{notes['acme'][0]}")

    assert response.status_code == 200
    assert response.json() == listed


@pytest.mark.parametrize("notification", ["tina", "unknown"])
def test_another_users_or_an_unknown_notification_is_not_found(api, notes, notification):
    notification_id = notes["tina"][0] if notification == "tina" else str(uuid.uuid4())

    for method, body in (("GET", None), ("PUT", {"dismissed": True})):
        response = api.call("reader", method, f"{INBOX}/{notification_id}", json=body)
        assert response.status_code == 404, method
    assert inbox(api, "team_admin")["notifications"][0]["dismissed"] is False


# --- paging ------------------------------------------------------------------------------------

def test_pages_cover_the_inbox_once_and_say_when_more_follow(api):
    stored = store(api, "rita", 5)

    pages = [inbox(api, "reader", page=number, limit=2) for number in (1, 2, 3)]

    assert [ids(page) for page in pages] == [stored[4:2:-1], stored[2:0:-1], stored[:1]]
    assert [page["additional"] for page in pages] == [True, True, False]
    assert inbox(api, "reader", page=4, limit=2) == {"notifications": [], "additional": False}


def test_page_zero_is_the_first_page_as_in_quay(api, notes):
    assert inbox(api, "reader", page=0, limit=1) == inbox(api, "reader", page=1, limit=1)
    assert inbox(api, "reader", page=0, limit=1)["additional"] is True


@pytest.mark.parametrize(("params", "words"), [
    ({"limit": 0}, ["limit"]), ({"limit": 101}, ["limit", "100"]), ({"page": -1}, ["page"]),
    ({"page": "two"}, ["page"]), ({"limit": "many"}, ["limit"]),
    ({"page": 10**20}, ["page", "100000"]), ({"page": 100_001}, ["page", "100000"]),
])
def test_bad_paging_is_refused(api, params, words):
    response = api.call("reader", "GET", INBOX, params=params)

    assert response.status_code == 400
    assert all(word in response.json()["error_message"] for word in words)


# --- dismissing --------------------------------------------------------------------------------

def test_dismissing_and_restoring_is_kept(api, notes):
    target = notes["rita"][1]

    dismissed = api.call("reader", "PUT", f"{INBOX}/{target}", json={"dismissed": True})

    assert dismissed.status_code == 200
    assert (dismissed.json()["id"], dismissed.json()["dismissed"]) == (target, True)
    assert {row["id"]: row["dismissed"] for row in inbox(api, "reader")["notifications"]} == {
        notes["rita"][0]: False, target: True, notes["rita"][2]: False}

    restored = api.call("reader", "PUT", f"{INBOX}/{target}", json={"dismissed": False})
    assert restored.json()["dismissed"] is False
    assert api.call("reader", "GET", f"{INBOX}/{target}").json()["dismissed"] is False


def test_an_organization_admin_dismisses_the_organizations_notification(api, notes):
    target = notes["acme"][0]

    response = api.call("org_admin", "PUT", f"{INBOX}/{target}", json={"dismissed": True})

    assert response.json()["dismissed"] is True
    assert response.json()["organization"] == "acme"
    assert inbox(api, "org_admin")["notifications"][0]["dismissed"] is True


@pytest.mark.parametrize("body", [
    {"dismissed": "yes"}, {"dismissed": 1}, {}, {"dismissed": True, "read": True}, None,
], ids=["text", "number", "missing", "unknown-key", "no-body"])
def test_a_bad_dismiss_is_refused_and_changes_nothing(api, notes, body):
    target = notes["rita"][0]

    response = api.call("reader", "PUT", f"{INBOX}/{target}", json=body)

    assert (response.status_code, response.json()["error_type"]) == (400, "invalid_request")
    assert api.call("reader", "GET", f"{INBOX}/{target}").json()["dismissed"] is False
