"""`notifier directory ...` and `notifier inbox`, run as a subprocess on SQLite after
`notifier db upgrade`: each command works, and bad input is one `error:` line."""

from __future__ import annotations

import json

import pytest

from notifier import directory
from notifier.db import make_engine, make_session_factory, transaction
from notifier.errors import NotFound
from notifier.inapp import store_notifications
from tests.cli_support import Cli, single_error_line, succeeded


@pytest.fixture(scope="module")
def acme(tmp_path_factory) -> Cli:
    """A migrated database holding users alice, bob and carol, organization acme (admin alice)
    and team acme/owners (bob). Tests that change it make their own."""
    cli = Cli(tmp_path_factory.mktemp("cli-directory"))
    assert succeeded(cli.run("db", "upgrade")).strip() == "database is up to date"
    for name in ("alice", "bob", "carol"):
        succeeded(cli.run("directory", "user", "add", name))
    succeeded(cli.run("directory", "org", "add", "acme", "--admin", "alice"))
    succeeded(cli.run("directory", "team", "add", "acme", "owners", "--member", "bob"))
    return cli


@pytest.fixture
def fresh(tmp_path) -> Cli:
    cli = Cli(tmp_path)
    succeeded(cli.run("db", "upgrade"))
    return cli


def in_database(cli: Cli, call, *args, **kwargs):
    """Run one call on the command's database, in a committed transaction."""
    engine = make_engine(cli.database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            return call(session, *args, **kwargs)
    finally:
        engine.dispose()


def admins(cli: Cli, repository: str) -> list[str]:
    return [user.name for user in in_database(cli, directory.repository_admins, repository)]


def test_users_organizations_and_teams(fresh):
    assert succeeded(fresh.run("directory", "user", "add", "alice", "--email",
                               "a@example.com")) == "saved user alice\n"
    succeeded(fresh.run("directory", "user", "add", "alice", "--email", "b@example.com"))
    succeeded(fresh.run("directory", "user", "add", "bob"))
    org_added = fresh.run("directory", "org", "add", "acme", "--email", "o@example.com",
                          "--admin", "alice", "--admin", "bob")
    assert succeeded(org_added) == "saved organization acme\n"
    assert succeeded(fresh.run("directory", "team", "add", "acme", "owners", "--member",
                               "bob")) == "saved team acme/owners\n"

    assert in_database(fresh, directory.find_user, "alice").email == "b@example.com"
    assert admins(fresh, "acme/web") == ["alice", "bob"]
    assert [u.name for u in in_database(fresh, directory.team_members, "acme", "owners")] == [
        "bob"]


def test_removals(fresh):
    succeeded(fresh.run("directory", "user", "add", "alice"))
    succeeded(fresh.run("directory", "org", "add", "acme", "--admin", "alice"))
    succeeded(fresh.run("directory", "team", "add", "acme", "owners"))

    assert succeeded(fresh.run("directory", "team", "remove", "acme", "owners")) == (
        "removed team acme/owners\n")
    assert succeeded(fresh.run("directory", "org", "remove", "acme")) == (
        "removed organization acme\n")
    assert succeeded(fresh.run("directory", "user", "remove", "alice")) == "removed user alice\n"
    with pytest.raises(NotFound):
        in_database(fresh, directory.find_user, "alice")


def test_grant_and_revoke(fresh):
    succeeded(fresh.run("directory", "user", "add", "carol"))
    succeeded(fresh.run("directory", "user", "add", "dave"))
    succeeded(fresh.run("directory", "org", "add", "acme"))
    succeeded(fresh.run("directory", "team", "add", "acme", "owners", "--member", "dave"))

    assert succeeded(fresh.run("directory", "grant", "acme/web", "--user", "carol", "--role",
                               "admin")) == "granted admin on acme/web to carol\n"
    succeeded(fresh.run("directory", "grant", "acme/web", "--team", "acme/owners", "--role",
                        "admin"))
    assert admins(fresh, "acme/web") == ["carol", "dave"]

    assert succeeded(fresh.run("directory", "revoke", "acme/web", "--user", "carol")) == (
        "revoked carol on acme/web\n")
    succeeded(fresh.run("directory", "grant", "acme/web", "--team", "acme/owners", "--role",
                        "read"))
    assert admins(fresh, "acme/web") == []


def test_inbox_as_json_has_the_api_shape(acme):
    alice = in_database(acme, directory.find_user, "alice")
    in_database(acme, lambda session: store_notifications(
        session, [alice], kind="repo_push", metadata={"repository": "acme/web"},
        delivery_id="cli-inbox-test"))

    shown = json.loads(succeeded(acme.run("inbox", "alice", "--json")))

    assert shown["additional"] is False
    [note] = shown["notifications"]
    assert (note["organization"], note["kind"], note["metadata"], note["dismissed"]) == (
        None, "repo_push", {"repository": "acme/web"}, False)
    assert set(note) == {"id", "organization", "kind", "created", "metadata", "dismissed"}
    assert "repo_push" in succeeded(acme.run("inbox", "alice"))


def test_an_empty_inbox(acme):
    assert json.loads(succeeded(acme.run("inbox", "carol", "--json"))) == {
        "notifications": [], "additional": False}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param(["directory", "user", "add", "acme"], "already an organization",
                     id="user-named-like-an-org"),
        pytest.param(["directory", "org", "add", "alice"], "already a user",
                     id="org-named-like-a-user"),
        pytest.param(["directory", "user", "add", "two words"], "must not contain",
                     id="bad-name"),
        pytest.param(["directory", "user", "add", "eve", "--email", "nope"],
                     "not an e-mail address", id="bad-email"),
        pytest.param(["directory", "user", "remove", "nobody"], "no user named 'nobody'",
                     id="remove-unknown-user"),
        pytest.param(["directory", "org", "add", "acme", "--admin", "nobody"],
                     "no user named 'nobody'", id="unknown-admin"),
        pytest.param(["directory", "team", "add", "nowhere", "owners"],
                     "no organization named 'nowhere'", id="team-without-org"),
        pytest.param(["directory", "team", "remove", "acme", "nobody"], "no team 'nobody'",
                     id="remove-unknown-team"),
        pytest.param(["directory", "grant", "acme/web", "--user", "bob", "--role", "owner"],
                     "role must be one of read, write, admin", id="unknown-role"),
        pytest.param(["directory", "grant", "acme/web", "--role", "read"],
                     "exactly one grantee", id="no-grantee"),
        pytest.param(["directory", "grant", "acme/web", "--user", "bob", "--team",
                      "acme/owners", "--role", "read"], "exactly one grantee",
                     id="two-grantees"),
        pytest.param(["directory", "grant", "acme", "--user", "bob", "--role", "read"],
                     "namespace/name", id="bad-repository"),
        pytest.param(["directory", "grant", "acme/web", "--user", "bob"],
                     "Missing option '--role'", id="usage-error"),
        pytest.param(["directory", "revoke", "acme/web", "--user", "bob"],
                     "bob holds no role on acme/web", id="revoke-nothing"),
        pytest.param(["inbox", "nobody"], "no user named 'nobody'", id="inbox-unknown-user"),
        pytest.param(["inbox", "alice", "--limit", "0"], "--limit", id="inbox-bad-limit"),
    ],
)
def test_a_refused_command_prints_one_error_line_and_changes_nothing(acme, args, says):
    assert says in single_error_line(acme.run(*args))

    assert admins(acme, "acme/web") == ["alice"]
    assert [u.name for u in in_database(acme, directory.team_members, "acme", "owners")] == [
        "bob"]


@pytest.mark.parametrize("kind", ["user", "org"])
def test_removing_a_namespace_removes_its_repositories_notifications(fresh, kind):
    from sqlalchemy import select

    from notifier.models import Notification
    from notifier.notifications import create_notification

    succeeded(fresh.run("directory", kind, "add", "bob"))
    in_database(fresh, create_notification, "bob/app", "repo_push", "webhook",
                {"url": "https://hooks.example.com/in"})

    succeeded(fresh.run("directory", kind, "remove", "bob"))

    found = in_database(fresh, lambda session: session.scalars(select(Notification.uuid)).all())
    assert found == []
