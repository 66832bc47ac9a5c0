"""The directory on PostgreSQL and SQLite: users, organizations, teams, grants, the admin rule."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select

from notifier import directory
from notifier.db import transaction
from notifier.errors import InvalidInput, NotFound
from notifier.models import OrganizationAdmin, RepositoryPermission, User


@pytest.fixture
def ns(unique_repo) -> str:
    """A namespace no other test uses (PostgreSQL is shared by the whole session)."""
    return unique_repo.split("/")[0]


def in_session(factory, call, *args, **kwargs):
    """Run one directory call in its own committed transaction."""
    with transaction(factory) as session:
        return call(session, *args, **kwargs)


def users(factory, ns, *names: str) -> list[str]:
    """Create users ``<ns>-<name>``; returns their full names."""
    full = [f"{ns}-{name}" for name in names]
    for name in full:
        in_session(factory, directory.save_user, name)
    return full


def admin_names(factory, repository: str) -> list[str]:
    with factory() as session:
        return [user.name for user in directory.repository_admins(session, repository)]


def count_statements(factory):
    """A list that fills with every SQL statement the factory's engine runs."""
    statements: list[str] = []
    event.listen(factory.kw["bind"], "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    return statements


# --- users and organizations ----------------------------------------------------------------

def test_saving_a_user_twice_updates_the_same_row(factory, ns):
    first = in_session(factory, directory.save_user, f"{ns}-alice", email="a@example.com")
    second = in_session(factory, directory.save_user, f"{ns}-alice", email="b@example.com")

    with factory() as session:
        stored = directory.find_user(session, f"{ns}-alice")
        rows = session.scalar(select(func.count()).select_from(User)
                              .where(User.name == f"{ns}-alice"))
    assert second.id == first.id == stored.id
    assert (rows, stored.email) == (1, "b@example.com")


def test_removing_a_user(factory, ns):
    [alice] = users(factory, ns, "alice")

    in_session(factory, directory.remove_user, alice)

    with factory() as session, pytest.raises(NotFound, match=f"no user named '{alice}'"):
        directory.find_user(session, alice)
    with pytest.raises(NotFound):
        in_session(factory, directory.remove_user, alice)


def test_an_organization_admins_become_exactly_the_ones_given(factory, ns):
    alice, bob = users(factory, ns, "alice", "bob")
    in_session(factory, directory.save_organization, ns, admins=[alice, bob])

    saved = in_session(factory, directory.save_organization, ns, email="org@example.com",
                       admins=[bob])

    with factory() as session:
        admin_ids = set(session.scalars(select(OrganizationAdmin.user_id)
                                        .where(OrganizationAdmin.organization_id == saved.id)))
        assert admin_ids == {directory.find_user(session, bob).id}
        assert directory.find_organization(session, ns).email == "org@example.com"


def test_an_unknown_admin_names_every_unknown_user_and_saves_nothing(factory, ns):
    [alice] = users(factory, ns, "alice")

    with pytest.raises(NotFound, match=f"no users named '{ns}-x', '{ns}-y'"):
        in_session(factory, directory.save_organization, ns, admins=[alice, f"{ns}-y",
                                                                      f"{ns}-x"])
    with factory() as session, pytest.raises(NotFound, match="no organization named"):
        directory.find_organization(session, ns)


def test_removing_an_organization_removes_its_teams(factory, ns):
    in_session(factory, directory.save_organization, ns)
    in_session(factory, directory.save_team, ns, "owners")

    in_session(factory, directory.remove_organization, ns)

    with factory() as session:
        with pytest.raises(NotFound):
            directory.find_organization(session, ns)
        with pytest.raises(NotFound, match=f"no team 'owners' in organization '{ns}'"):
            directory.find_team(session, ns, "owners")


def test_users_and_organizations_share_one_namespace(factory, ns):
    [alice] = users(factory, ns, "alice")
    in_session(factory, directory.save_organization, ns)

    with pytest.raises(InvalidInput, match="already a user; users and organizations share"):
        in_session(factory, directory.save_organization, alice)
    with pytest.raises(InvalidInput, match="already an organization; users and organizations"):
        in_session(factory, directory.save_user, ns)


@pytest.mark.parametrize("name", ["", "two words", "a/b", "x" * 256, None])
def test_bad_names_are_refused(factory, name):
    with pytest.raises(InvalidInput, match="name"):
        in_session(factory, directory.save_user, name)


def test_a_bad_email_is_refused(factory, ns):
    with pytest.raises(InvalidInput, match="'nope' is not an e-mail address"):
        in_session(factory, directory.save_organization, ns, email="nope")


# --- teams --------------------------------------------------------------------------------------

def test_team_members_become_exactly_the_ones_given(factory, ns):
    alice, bob, carol = users(factory, ns, "alice", "bob", "carol")
    in_session(factory, directory.save_organization, ns)
    first = in_session(factory, directory.save_team, ns, "owners", members=[alice, bob])

    second = in_session(factory, directory.save_team, ns, "owners", members=[carol, bob])

    with factory() as session:
        members = [user.name for user in directory.team_members(session, ns, "owners")]
    assert second.id == first.id
    assert members == [bob, carol]


def test_a_team_needs_its_organization(factory, ns):
    with pytest.raises(NotFound, match=f"no organization named '{ns}'"):
        in_session(factory, directory.save_team, ns, "owners")


def test_removing_a_team(factory, ns):
    in_session(factory, directory.save_organization, ns)
    in_session(factory, directory.save_team, ns, "owners")

    in_session(factory, directory.remove_team, ns, "owners")

    with pytest.raises(NotFound, match="no team 'owners'"):
        in_session(factory, directory.team_members, ns, "owners")


def test_saving_a_big_team_takes_a_bounded_number_of_statements(factory, ns):
    members = users(factory, ns, *(f"m{i}" for i in range(30)))
    in_session(factory, directory.save_organization, ns)
    statements = count_statements(factory)

    in_session(factory, directory.save_team, ns, "everyone", members=members)

    assert len(statements) <= 8, statements  # not one per member


# --- grants ------------------------------------------------------------------------------------

def roles_held(factory, repository: str) -> list[str]:
    with factory() as session:
        return list(session.scalars(select(RepositoryPermission.role)
                                    .where(RepositoryPermission.repository == repository)))


def test_a_grant_is_idempotent_and_replaces_the_role(factory, ns):
    [alice] = users(factory, ns, "alice")
    repository = f"{ns}/web"

    in_session(factory, directory.grant, repository, "read", user=alice)
    in_session(factory, directory.grant, repository, "read", user=alice)
    assert roles_held(factory, repository) == ["read"]

    in_session(factory, directory.grant, repository, "admin", user=alice)
    assert roles_held(factory, repository) == ["admin"]


def test_a_team_grant_and_its_revocation(factory, ns):
    in_session(factory, directory.save_organization, ns)
    in_session(factory, directory.save_team, ns, "owners")
    repository = f"{ns}/web"

    in_session(factory, directory.grant, repository, "write", team=f"{ns}/owners")
    assert roles_held(factory, repository) == ["write"]

    in_session(factory, directory.revoke, repository, team=f"{ns}/owners")
    assert roles_held(factory, repository) == []
    with pytest.raises(NotFound, match=f"{ns}/owners holds no role on {repository}"):
        in_session(factory, directory.revoke, repository, team=f"{ns}/owners")


@pytest.mark.parametrize(
    ("role", "grantee", "error", "says"),
    [
        pytest.param("owner", lambda ns: {"user": f"{ns}-alice"}, InvalidInput,
                     "role must be one of read, write, admin, not 'owner'", id="unknown-role"),
        pytest.param("read", lambda ns: {}, InvalidInput, "exactly one grantee",
                     id="no-grantee"),
        pytest.param("read", lambda ns: {"user": f"{ns}-alice", "team": f"{ns}/owners"},
                     InvalidInput, "exactly one grantee", id="two-grantees"),
        pytest.param("read", lambda ns: {"team": "owners"}, InvalidInput,
                     "must be written ORG/TEAM", id="team-without-org"),
        pytest.param("read", lambda ns: {"team": "other/owners"}, InvalidInput,
                     "can only hold roles on repositories of 'other'", id="team-of-another-org"),
        pytest.param("read", lambda ns: {"user": "nobody"}, NotFound, "no user named 'nobody'",
                     id="unknown-user"),
        pytest.param("read", lambda ns: {"team": f"{ns}/nobody"}, NotFound, "no team 'nobody'",
                     id="unknown-team"),
    ],
)
def test_a_bad_grant_is_refused_and_stores_nothing(factory, ns, role, grantee, error, says):
    users(factory, ns, "alice")
    in_session(factory, directory.save_organization, ns)
    in_session(factory, directory.save_team, ns, "owners")

    with pytest.raises(error, match=says):
        in_session(factory, directory.grant, f"{ns}/web", role, **grantee(ns))
    assert roles_held(factory, f"{ns}/web") == []


# --- who is an admin -----------------------------------------------------------------------------

@pytest.fixture
def org_repository(factory, ns) -> str:
    """``<ns>/web`` in organization <ns>: an org admin, a direct admin, a team admin (through
    team owners), a writer, a reader (through team readers) and a stranger."""
    names = users(factory, ns, "orgadmin", "granted", "teammate", "writer", "reader",
                  "stranger")
    full = dict(zip(["orgadmin", "granted", "teammate", "writer", "reader", "stranger"], names))
    repository = f"{ns}/web"
    in_session(factory, directory.save_organization, ns, admins=[full["orgadmin"]])
    in_session(factory, directory.save_team, ns, "owners", members=[full["teammate"]])
    in_session(factory, directory.save_team, ns, "readers", members=[full["reader"]])
    in_session(factory, directory.grant, repository, "admin", user=full["granted"])
    in_session(factory, directory.grant, repository, "admin", team=f"{ns}/owners")
    in_session(factory, directory.grant, repository, "write", user=full["writer"])
    in_session(factory, directory.grant, repository, "read", team=f"{ns}/readers")
    return repository


@pytest.mark.parametrize(("who", "is_admin"), [
    ("orgadmin", True), ("granted", True), ("teammate", True),
    ("writer", False), ("reader", False), ("stranger", False), ("nobody", False),
])
def test_the_admin_rule_in_an_organization(factory, ns, org_repository, who, is_admin):
    with factory() as session:
        assert directory.is_repository_admin(session, f"{ns}-{who}", org_repository) is is_admin


def test_the_admins_of_an_organization_repository(factory, ns, org_repository):
    assert admin_names(factory, org_repository) == [
        f"{ns}-granted", f"{ns}-orgadmin", f"{ns}-teammate"]


def test_the_namespace_user_is_the_admin_of_their_repositories(factory, ns):
    owner, other, helper = users(factory, ns, "owner", "other", "helper")
    repository = f"{owner}/web"
    in_session(factory, directory.grant, repository, "admin", user=helper)

    with factory() as session:
        assert directory.is_repository_admin(session, owner, repository)
        assert not directory.is_repository_admin(session, owner, f"{other}/web")
    assert admin_names(factory, repository) == [helper, owner]


def test_an_admin_rule_follows_removals(factory, ns, org_repository):
    in_session(factory, directory.remove_team, ns, "owners")
    in_session(factory, directory.remove_user, f"{ns}-granted")
    in_session(factory, directory.save_organization, ns)  # no admins any more

    assert admin_names(factory, org_repository) == []


def test_finding_the_admins_is_one_statement(factory, org_repository):
    statements = count_statements(factory)

    assert len(admin_names(factory, org_repository)) == 3
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
