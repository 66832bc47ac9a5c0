"""`notifier directory ...` (users, organizations, teams, permissions) and `notifier inbox`.

`add` creates the thing or makes it exactly as given (admins and members included), like the
API's PUT: running the same command twice changes nothing.
"""

from __future__ import annotations

import json

import click

from notifier.cli import _factory, cli


@cli.group()
def directory() -> None:
    """Users, organizations, teams and repository permissions."""


@directory.group()
def user() -> None:
    """Users."""


@user.command("add")
@click.argument("name")
@click.option("--email", help="The user's e-mail address.")
def user_add(name: str, email: str | None) -> None:
    """Create user NAME, or set its e-mail address."""
    from notifier.db import transaction
    from notifier.directory import save_user

    with transaction(_factory()) as session:
        save_user(session, name, email=email)
    click.echo(f"saved user {name}")


@user.command("remove")
@click.argument("name")
def user_remove(name: str) -> None:
    """Delete user NAME with its memberships, grants and in-app notifications."""
    from notifier.db import transaction
    from notifier.directory import remove_user

    with transaction(_factory()) as session:
        remove_user(session, name)
    click.echo(f"removed user {name}")


@directory.group()
def org() -> None:
    """Organizations."""


@org.command("add")
@click.argument("name")
@click.option("--email", help="The organization's e-mail address.")
@click.option("--admin", "admins", multiple=True, metavar="USER",
              help="An admin (repeat for several); the admins become exactly these.")
def org_add(name: str, email: str | None, admins: tuple[str, ...]) -> None:
    """Create organization NAME, or update it."""
    from notifier.db import transaction
    from notifier.directory import save_organization

    with transaction(_factory()) as session:
        save_organization(session, name, email=email, admins=admins)
    click.echo(f"saved organization {name}")


@org.command("remove")
@click.argument("name")
def org_remove(name: str) -> None:
    """Delete organization NAME with its teams and their grants."""
    from notifier.db import transaction
    from notifier.directory import remove_organization

    with transaction(_factory()) as session:
        remove_organization(session, name)
    click.echo(f"removed organization {name}")


@directory.group()
def team() -> None:
    """Teams of an organization."""


@team.command("add")
@click.argument("organization")
@click.argument("name")
@click.option("--member", "members", multiple=True, metavar="USER",
              help="A member (repeat for several); the members become exactly these.")
def team_add(organization: str, name: str, members: tuple[str, ...]) -> None:
    """Create team NAME in ORGANIZATION, or update it."""
    from notifier.db import transaction
    from notifier.directory import save_team

    with transaction(_factory()) as session:
        save_team(session, organization, name, members=members)
    click.echo(f"saved team {organization}/{name}")


@team.command("remove")
@click.argument("organization")
@click.argument("name")
def team_remove(organization: str, name: str) -> None:
    """Delete team NAME of ORGANIZATION with its memberships and grants."""
    from notifier.db import transaction
    from notifier.directory import remove_team

    with transaction(_factory()) as session:
        remove_team(session, organization, name)
    click.echo(f"removed team {organization}/{name}")


def _grantee_options(command):
    """--user NAME | --team ORG/TEAM (exactly one; the directory refuses both or neither)."""
    command = click.option("--team", metavar="ORG/TEAM", help="A team of the namespace.")(command)
    return click.option("--user", metavar="NAME", help="A user.")(command)


@directory.command("grant")
@click.argument("repository")
@_grantee_options
@click.option("--role", required=True, metavar="read|write|admin")
def directory_grant(repository: str, user: str | None, team: str | None, role: str) -> None:
    """Give a user or team a role on REPOSITORY (ns/name), replacing theirs."""
    from notifier.db import transaction
    from notifier.directory import grant

    with transaction(_factory()) as session:
        grant(session, repository, role, user=user, team=team)
    click.echo(f"granted {role} on {repository} to {user or team}")


@directory.command("revoke")
@click.argument("repository")
@_grantee_options
def directory_revoke(repository: str, user: str | None, team: str | None) -> None:
    """Take away the role a user or team holds on REPOSITORY."""
    from notifier.db import transaction
    from notifier.directory import revoke

    with transaction(_factory()) as session:
        revoke(session, repository, user=user, team=team)
    click.echo(f"revoked {user or team} on {repository}")


@cli.command()
@click.argument("user_name", metavar="USER")
@click.option("--page", default=1, show_default=True, type=click.IntRange(1))
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100))
@click.option("--json", "as_json", is_flag=True, help="The API's JSON shape.")
def inbox(user_name: str, page: int, limit: int, as_json: bool) -> None:
    """USER's in-app notifications, newest first."""
    from notifier.inapp import list_inbox

    with _factory()() as session:
        notifications, additional = list_inbox(session, user_name, page=page, limit=limit)
    if as_json:
        click.echo(json.dumps({"notifications": notifications, "additional": additional},
                              indent=2))
        return
    _print_inbox(notifications, additional)


def _print_inbox(notifications: list[dict], additional: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("created", "id", "organization", "kind", "dismissed", "about")
    for note in notifications:
        table.add_row(note["created"], note["id"][:8], note["organization"] or "",
                      note["kind"], "yes" if note["dismissed"] else "",
                      note["metadata"].get("repository", ""))
    console = Console(width=200)
    console.print(table)
    if additional:
        console.print("more on the next page (--page)")
