"""The directory calls the registry makes (service token only): idempotent PUTs, DELETEs, and
bad input refused with nothing stored; on the API personas' PostgreSQL copy."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from notifier.directory import is_repository_admin
from notifier.models import (
    Organization,
    OrganizationAdmin,
    RepositoryPermission,
    Team,
    TeamMember,
    User,
)
from tests.api_support import USERS

USER_PERSONAS = list(USERS)

# One valid call per endpoint on the seeded directory, with what the service gets.
CALLS = [
    pytest.param("PUT", "/api/v1/directory/users/uma", {"email": "uma@example.com"}, 200,
                 id="put-user"),
    pytest.param("DELETE", "/api/v1/directory/users/rita", None, 204, id="delete-user"),
    pytest.param("PUT", "/api/v1/directory/organizations/globex", {"admins": ["alice"]}, 200,
                 id="put-org"),
    pytest.param("DELETE", "/api/v1/directory/organizations/acme", None, 204, id="delete-org"),
    pytest.param("PUT", "/api/v1/directory/organizations/acme/teams/devs", {"members": ["rita"]},
                 200, id="put-team"),
    pytest.param("DELETE", "/api/v1/directory/organizations/acme/teams/ops", None, 204,
                 id="delete-team"),
    pytest.param("PUT", "/api/v1/repository/acme/web/permissions/users/alice", {"role": "write"},
                 200, id="put-user-permission"),
    pytest.param("DELETE", "/api/v1/repository/acme/web/permissions/users/rita", None, 204,
                 id="delete-user-permission"),
    pytest.param("PUT", "/api/v1/repository/acme/web/permissions/teams/acme/ops",
                 {"role": "read"}, 200, id="put-team-permission"),
    pytest.param("DELETE", "/api/v1/repository/acme/web/permissions/teams/acme/ops", None, 204,
                 id="delete-team-permission"),
]


def put(api, path: str, body):
    return api.call("service", "PUT", path, json=body)


def rows(api, statement) -> list[tuple]:
    with api.client.app.state.factory() as session:
        return [tuple(row) for row in session.execute(statement)]


def user_emails(api) -> dict[str, str | None]:
    return dict(rows(api, select(User.name, User.email)))


def org_admins(api, organization: str) -> list[str]:
    return sorted(name for (name,) in rows(api, select(User.name)
                  .join(OrganizationAdmin, OrganizationAdmin.user_id == User.id)
                  .join(Organization, Organization.id == OrganizationAdmin.organization_id)
                  .where(Organization.name == organization)))


def team_members(api, organization: str, team: str) -> list[str]:
    return sorted(name for (name,) in rows(api, select(User.name)
                  .join(TeamMember, TeamMember.user_id == User.id)
                  .join(Team, Team.id == TeamMember.team_id)
                  .join(Organization, Organization.id == Team.organization_id)
                  .where(Organization.name == organization, Team.name == team)))


def roles(api, repository: str) -> list[tuple]:
    """(user name or None, team name or None, role) of every grant on ``repository``."""
    return sorted(rows(api, select(User.name, Team.name, RepositoryPermission.role)
                       .select_from(RepositoryPermission)
                       .outerjoin(User, User.id == RepositoryPermission.user_id)
                       .outerjoin(Team, Team.id == RepositoryPermission.team_id)
                       .where(RepositoryPermission.repository == repository)),
                  key=lambda grant: (grant[0] or "", grant[1] or ""))


def assert_refused(response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    message = response.json()["error_message"]
    for word in words:
        assert word in message


# --- who may call ------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "body", "allowed"), CALLS)
def test_only_the_service_may_edit_the_directory(api, method, path, body, allowed):
    for persona in USER_PERSONAS:
        response = api.call(persona, method, path, json=body)
        assert (persona, response.status_code, response.json()["error_type"]) == (
            persona, 403, "insufficient_scope")
    anonymous = api.call("none", method, path, json=body)
    assert (anonymous.status_code, anonymous.json()["error_type"]) == (401, "invalid_token")

    assert api.call("service", method, path, json=body).status_code == allowed


def test_a_refused_caller_gets_403_before_its_body_is_read(api):
    response = api.call("reader", "PUT", "/api/v1/directory/users/uma", json={"bogus": 1})

    assert response.status_code == 403
    assert "uma" not in user_emails(api)


# --- users -------------------------------------------------------------------------------------

def test_putting_a_user_twice_leaves_one_user(api):
    first = put(api, "/api/v1/directory/users/uma", {"email": "uma@example.com"})
    second = put(api, "/api/v1/directory/users/uma", {"email": "uma@example.com"})

    assert first.json() == second.json() == {"name": "uma", "email": "uma@example.com"}
    assert [name for name in user_emails(api) if name == "uma"] == ["uma"]
    assert user_emails(api)["uma"] == "uma@example.com"


def test_putting_a_user_again_describes_it_exactly(api):
    put(api, "/api/v1/directory/users/rita", {"email": "r@example.org"})
    assert user_emails(api)["rita"] == "r@example.org"

    assert put(api, "/api/v1/directory/users/rita", {}).json() == {"name": "rita", "email": None}
    assert user_emails(api)["rita"] is None


def test_deleting_a_user_removes_it_and_its_grants(api):
    response = api.call("service", "DELETE", "/api/v1/directory/users/rita")

    assert (response.status_code, response.content) == (204, b"")
    assert "rita" not in user_emails(api)
    assert roles(api, "acme/web") == [(None, "ops", "admin")]
    assert_refused(api.call("service", "DELETE", "/api/v1/directory/users/rita"), 404, "rita")


@pytest.mark.parametrize(("path", "body", "words"), [
    pytest.param("/api/v1/directory/users/acme", {}, ["'acme'", "organization"],
                 id="an-organizations-name"),
    pytest.param("/api/v1/directory/users/uma", {"email": "not-an-address"}, ["not-an-address"],
                 id="bad-email"),
    pytest.param("/api/v1/directory/users/uma", {"email": 7}, ["email"], id="email-not-text"),
    pytest.param("/api/v1/directory/users/uma", {"mail": "uma@example.com"}, ["mail"],
                 id="unknown-key"),
    pytest.param("/api/v1/directory/users/uma", None, ["body"], id="no-body"),
])
def test_a_bad_user_is_refused_and_not_stored(api, path, body, words):
    before = user_emails(api)

    assert_refused(put(api, path, body), 400, *words)

    assert user_emails(api) == before


# --- organizations -----------------------------------------------------------------------------

def test_putting_an_organization_twice_gives_the_same_admins(api):
    body = {"email": "it@globex.example", "admins": ["rita", "alice", "rita"]}
    first = put(api, "/api/v1/directory/organizations/globex", body)
    second = put(api, "/api/v1/directory/organizations/globex", body)

    assert first.status_code == second.status_code == 200
    assert first.json() == second.json() == {"name": "globex", "email": "it@globex.example",
                                             "admins": ["alice", "rita"]}
    assert org_admins(api, "globex") == ["alice", "rita"]


def test_putting_an_organization_replaces_its_admins(api):
    response = put(api, "/api/v1/directory/organizations/acme", {"admins": ["tina"]})

    assert response.json()["admins"] == ["tina"]
    assert org_admins(api, "acme") == ["tina"]
    with api.client.app.state.factory() as session:
        assert is_repository_admin(session, "tina", "acme/other")
        assert not is_repository_admin(session, "oscar", "acme/other")


@pytest.mark.parametrize(("body", "words"), [
    pytest.param({"admins": ["rita", "nobody", "ghost"]}, ["'ghost'", "'nobody'"],
                 id="unknown-admins"),
    pytest.param({"email": "x@acme.example"}, ["admins", "required"], id="no-admins"),
    pytest.param({"admins": "oscar"}, ["admins"], id="admins-not-a-list"),
    pytest.param({"admins": [], "owner": "oscar"}, ["owner"], id="unknown-key"),
])
def test_a_bad_organization_is_refused_and_nothing_changes(api, body, words):
    assert_refused(put(api, "/api/v1/directory/organizations/acme", body), 400, *words)
    assert_refused(put(api, "/api/v1/directory/organizations/globex", body), 400, *words)

    assert org_admins(api, "acme") == ["oscar"]
    assert rows(api, select(Organization.name, Organization.email)) == [("acme", None)]


def test_deleting_an_organization_removes_its_teams(api):
    assert api.call("service", "DELETE", "/api/v1/directory/organizations/acme").status_code == 204

    assert rows(api, select(Organization.name)) == []
    assert rows(api, select(Team.name)) == []
    assert roles(api, "acme/web") == []  # rita's own grant too: a new acme must not inherit it
    assert_refused(api.call("service", "DELETE", "/api/v1/directory/organizations/acme"),
                   404, "acme")


# --- teams -------------------------------------------------------------------------------------

def test_putting_a_team_twice_gives_the_same_members(api):
    body = {"members": ["rita", "alice"]}
    first = put(api, "/api/v1/directory/organizations/acme/teams/devs", body)
    second = put(api, "/api/v1/directory/organizations/acme/teams/devs", body)

    assert first.json() == second.json() == {"organization": "acme", "name": "devs",
                                             "members": ["alice", "rita"]}
    assert team_members(api, "acme", "devs") == ["alice", "rita"]
    assert len(rows(api, select(Team.id).where(Team.name == "devs"))) == 1


def test_putting_a_team_replaces_its_members(api):
    put(api, "/api/v1/directory/organizations/acme/teams/ops", {"members": ["rita"]})

    assert team_members(api, "acme", "ops") == ["rita"]
    with api.client.app.state.factory() as session:  # ops holds admin on acme/web
        assert is_repository_admin(session, "rita", "acme/web")
        assert not is_repository_admin(session, "tina", "acme/web")


def test_a_team_with_an_unknown_member_is_refused_and_nothing_changes(api):
    assert_refused(put(api, "/api/v1/directory/organizations/acme/teams/ops",
                       {"members": ["rita", "nobody"]}), 400, "'nobody'")
    assert_refused(put(api, "/api/v1/directory/organizations/acme/teams/devs",
                       {"members": ["nobody"]}), 400, "'nobody'")

    assert team_members(api, "acme", "ops") == ["tina"]
    assert rows(api, select(Team.name)) == [("ops",)]


def test_a_team_of_an_unknown_organization_is_not_found(api):
    assert_refused(put(api, "/api/v1/directory/organizations/globex/teams/devs",
                       {"members": []}), 404, "globex")
    assert rows(api, select(Team.name)) == [("ops",)]


def test_deleting_a_team_removes_its_grants(api):
    response = api.call("service", "DELETE", "/api/v1/directory/organizations/acme/teams/ops")

    assert response.status_code == 204
    assert roles(api, "acme/web") == [("rita", None, "read")]
    assert_refused(api.call("service", "DELETE", "/api/v1/directory/organizations/acme/teams/ops"),
                   404, "ops")


# --- repository permissions --------------------------------------------------------------------

def test_putting_a_users_role_twice_leaves_one_grant(api):
    path = "/api/v1/repository/acme/web/permissions/users/rita"
    first = put(api, path, {"role": "admin"})
    second = put(api, path, {"role": "admin"})

    assert first.json() == second.json() == {"repository": "acme/web", "user": "rita",
                                             "role": "admin"}
    assert roles(api, "acme/web") == [(None, "ops", "admin"), ("rita", None, "admin")]
    with api.client.app.state.factory() as session:
        assert is_repository_admin(session, "rita", "acme/web")


def test_putting_a_teams_role_replaces_it(api):
    path = "/api/v1/repository/acme/web/permissions/teams/acme/ops"
    response = put(api, path, {"role": "write"})

    assert response.json() == {"repository": "acme/web", "team": "acme/ops", "role": "write"}
    assert roles(api, "acme/web") == [(None, "ops", "write"), ("rita", None, "read")]
    with api.client.app.state.factory() as session:
        assert not is_repository_admin(session, "tina", "acme/web")


def test_a_repository_path_may_hold_a_slash(api):
    response = put(api, "/api/v1/repository/acme/web/nested/permissions/users/rita",
                   {"role": "write"})

    assert response.json()["repository"] == "acme/web/nested"
    assert roles(api, "acme/web/nested") == [("rita", None, "write")]


@pytest.mark.parametrize(("path", "body", "words"), [
    pytest.param("/api/v1/repository/acme/web/permissions/users/rita", {"role": "owner"},
                 ["'owner'", "read, write, admin"], id="bad-role"),
    pytest.param("/api/v1/repository/acme/web/permissions/users/rita", {"role": ["admin"]},
                 ["role"], id="role-not-text"),
    pytest.param("/api/v1/repository/acme/web/permissions/users/rita", {}, ["role", "required"],
                 id="no-role"),
    pytest.param("/api/v1/repository/acme/web/permissions/users/rita",
                 {"role": "admin", "expires": "never"}, ["expires"], id="unknown-key"),
    pytest.param("/api/v1/repository/acme/web/permissions/teams/acme/ops", {"role": "boss"},
                 ["'boss'"], id="bad-team-role"),
    pytest.param("/api/v1/repository/alice/app/permissions/teams/acme/ops", {"role": "read"},
                 ["'acme/ops'", "alice/app"], id="team-of-another-namespace"),
    pytest.param("/api/v1/repository/noslash/permissions/users/rita", {"role": "read"},
                 ["noslash"], id="repository-without-namespace"),
])
def test_a_bad_grant_is_refused_and_nothing_changes(api, path, body, words):
    assert_refused(put(api, path, body), 400, *words)

    assert roles(api, "acme/web") == [(None, "ops", "admin"), ("rita", None, "read")]
    assert roles(api, "alice/app") == roles(api, "noslash") == []


@pytest.mark.parametrize("path", [
    "/api/v1/repository/acme/web/permissions/users/nobody",
    "/api/v1/repository/acme/web/permissions/teams/acme/nobody",
])
def test_granting_to_an_unknown_grantee_is_not_found(api, path):
    assert_refused(put(api, path, {"role": "read"}), 404, "nobody")
    assert len(roles(api, "acme/web")) == 2


def test_revoking_takes_the_role_away_once(api):
    user = "/api/v1/repository/acme/web/permissions/users/rita"
    team = "/api/v1/repository/acme/web/permissions/teams/acme/ops"

    assert api.call("service", "DELETE", user).status_code == 204
    assert api.call("service", "DELETE", team).status_code == 204

    assert roles(api, "acme/web") == []
    assert_refused(api.call("service", "DELETE", user), 404, "rita")
    assert_refused(api.call("service", "DELETE", team), 404, "acme/ops")


# --- a namespace that goes takes its repositories' notifications, secrets and authorizations ----

@pytest.mark.parametrize(("kind", "path", "body", "repository", "admin"), [
    ("user", "/api/v1/directory/users/alice", {}, "alice/app", "owner"),
    ("organization", "/api/v1/directory/organizations/acme", {"admins": ["oscar"]}, "acme/web",
     "org_admin"),
])
def test_whoever_gets_a_deleted_namespace_inherits_none_of_it(api, kind, path, body, repository,
                                                              admin):
    from notifier.api.tokens import create_token
    from notifier.db import transaction
    from notifier.models import AuthorizedEmail, Notification

    created = api.call(admin, "POST", f"/api/v1/repository/{repository}/notification/",
                       json={"event": "repo_push", "method": "webhook",
                             "config": {"url": "http://127.0.0.1:9/hook"}})
    assert created.status_code == 201, created.text
    with transaction(api.client.app.state.factory) as session:
        session.add(AuthorizedEmail(repository=repository, email="x@example.com",
                                    confirmed=True))

    assert api.call("service", "DELETE", path).status_code == 204
    assert put(api, path, body).status_code == 200  # someone else takes the name
    with transaction(api.client.app.state.factory) as session:
        name = "alice" if kind == "user" else "oscar"
        if kind == "user":
            api.tokens["newcomer"] = create_token(session, user=name)
        else:
            api.tokens["newcomer"] = api.tokens[admin]

    listed = api.call("newcomer", "GET", f"/api/v1/repository/{repository}/notification/")
    secret = api.call("newcomer", "GET", f"/api/v1/repository/{repository}/notification/"
                                         f"{created.json()['uuid']}/secret")
    assert listed.status_code == 200 and listed.json() == {"notifications": []}
    assert secret.status_code == 404
    assert rows(api, select(Notification.uuid).where(Notification.repository == repository)) == []
    assert rows(api, select(AuthorizedEmail.id)
                .where(AuthorizedEmail.repository == repository)) == []
    assert roles(api, repository) == []


def test_deleting_a_namespace_leaves_a_longer_namespace_alone(api):
    """``alice`` is gone; ``alice_x/...`` (LIKE's wildcard ``_``) and ``alicex/...`` stay."""
    from notifier.db import transaction
    from notifier.models import Notification

    with transaction(api.client.app.state.factory) as session:
        for repository in ("alice_x/app", "alicex/app", "alice/app"):
            session.add(Notification(repository=repository, event="repo_push", method="webhook",
                                     config={"url": "http://127.0.0.1:9/"}))

    assert api.call("service", "DELETE", "/api/v1/directory/users/alice").status_code == 204
    assert sorted(r for (r,) in rows(api, select(Notification.repository))
                  if r.startswith("alice")) == ["alice_x/app", "alicex/app"]
