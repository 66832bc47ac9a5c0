"""`notifier ui-link USER`: a single-use sign-in link for the web UI."""

from __future__ import annotations

from urllib.parse import urlencode

import click

from config import get_settings
from notifier.cli import _factory, cli


@cli.command("ui-link")
@click.argument("user")
def ui_link(user: str) -> None:
    """Print a link that signs USER in to the web UI once; it expires in minutes."""
    from notifier.db import transaction
    from notifier.ui.sessions import create_signin_link

    settings = get_settings()
    with transaction(_factory()) as session:
        code = create_signin_link(session, user, ttl_s=settings.ui_link_ttl_s)
    click.echo(f"{settings.ui_url}/signin/link?{urlencode({'code': code})}")
    click.echo(f"(works once, for {settings.ui_link_ttl_s / 60:g} minutes)", err=True)
