"""`notifier email authorize|confirm`: which addresses may receive a repository's notifications."""

from __future__ import annotations

import click

from config import get_settings
from notifier.cli import _factory, cli


@cli.group("email")
def email_group() -> None:
    """E-mail addresses allowed to receive notifications."""


@email_group.command("authorize")
@click.argument("repository")
@click.argument("address")
def email_authorize(repository: str, address: str) -> None:
    """Send ADDRESS a link to confirm it for REPOSITORY.

    Once confirmed, ADDRESS may receive REPOSITORY's notifications. An address already confirmed
    gets no e-mail.
    """
    from notifier.db import transaction
    from notifier.email_auth import authorize
    from notifier.mailer import Mailer

    settings = get_settings()
    with transaction(_factory()) as session:
        record = authorize(session, repository, address, settings=settings,
                           mailer=Mailer.from_settings(settings))
    if record.confirmed:
        click.echo(f"{record.email} is already confirmed for {record.repository}; no e-mail sent")
    else:
        click.echo(f"confirmation e-mail sent to {record.email} for {record.repository}")


@email_group.command("confirm")
@click.argument("code")
def email_confirm(code: str) -> None:
    """Confirm the address whose confirmation link carried CODE."""
    from notifier.db import transaction
    from notifier.email_auth import confirm

    with transaction(_factory()) as session:
        record = confirm(session, code)
    click.echo(f"{record.email} is confirmed for {record.repository}")
