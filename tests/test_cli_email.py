"""`notifier email authorize|confirm` as a subprocess on SQLite, mailing a real SMTP server, and
the email method's create-time check through `notifier notification add`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from notifier.db import make_engine, make_session_factory
from notifier.models import AuthorizedEmail
from tests.cli_support import Cli, single_error_line, succeeded
from tests.smtp import SmtpServer, free_port

ADDRESS = "dev@example.com"
REPOSITORY = "acme/web"
LINK = re.compile(r"https://registry\.example\.com/authrepoemail\?code=([A-Za-z0-9_-]+)")
NOT_AUTHORIZED = ("error: The specified e-mail address is not authorized to receive notifications "
                  "for this repository")


class EmailCli(Cli):
    """`notifier` with its own SQLite database, mailing through ``smtp_port``."""

    def __init__(self, folder: Path, smtp_port: int):
        super().__init__(folder, NOTIFIER_SMTP_HOST="127.0.0.1",
                         NOTIFIER_SMTP_PORT=str(smtp_port), NOTIFIER_SMTP_TIMEOUT_S="5",
                         NOTIFIER_SERVER_HOSTNAME="registry.example.com",
                         NOTIFIER_PREFERRED_URL_SCHEME="https")

    def stored_addresses(self) -> int:
        engine = make_engine(self.database_url)
        try:
            with make_session_factory(engine)() as session:
                return session.scalar(select(func.count()).select_from(AuthorizedEmail))
        finally:
            engine.dispose()


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def cli(tmp_path, smtp) -> EmailCli:
    made = EmailCli(tmp_path, smtp.port)
    succeeded(made.run("db", "upgrade"))
    return made


def test_authorize_confirm_then_add_an_email_notification(cli, smtp):
    out = succeeded(cli.run("email", "authorize", REPOSITORY, ADDRESS))
    assert out == f"confirmation e-mail sent to {ADDRESS} for {REPOSITORY}\n"
    [received] = smtp.inbox.messages
    assert received["To"] == ADDRESS
    [code] = LINK.findall(received.get_content())

    out = succeeded(cli.run("email", "confirm", code))
    assert out == f"{ADDRESS} is confirmed for {REPOSITORY}\n"

    out = succeeded(cli.run("notification", "add", REPOSITORY, "--event", "repo_push",
                            "--method", "email", "--config", f'{{"email": "{ADDRESS}"}}'))
    assert re.fullmatch(r"[0-9a-f-]{36}\n", out)

    out = succeeded(cli.run("email", "authorize", REPOSITORY, ADDRESS))
    assert out == f"{ADDRESS} is already confirmed for {REPOSITORY}; no e-mail sent\n"
    assert len(smtp.inbox.envelopes) == 1

    assert single_error_line(cli.run("email", "confirm", code)) == \
        "error: Unknown or already used confirmation code"


def test_an_unconfirmed_address_cannot_get_notifications(cli):
    succeeded(cli.run("email", "authorize", REPOSITORY, ADDRESS))
    result = cli.run("notification", "add", REPOSITORY, "--event", "repo_push",
                     "--method", "email", "--config", f'{{"email": "{ADDRESS}"}}')
    assert single_error_line(result) == (
        f"{NOT_AUTHORIZED}: {ADDRESS} has not used its confirmation link yet; opening the link "
        f"(or 'notifier email confirm CODE' with its code) confirms it, and "
        f"'notifier email authorize {REPOSITORY} {ADDRESS}' mails a new link")


def test_an_address_never_authorized_is_refused_naming_the_commands(cli):
    result = cli.run("notification", "add", REPOSITORY, "--event", "repo_push",
                     "--method", "email", "--config", f'{{"email": "{ADDRESS}"}}')
    assert single_error_line(result) == (
        f"{NOT_AUTHORIZED}: {ADDRESS} is not confirmed for {REPOSITORY} yet; "
        f"'notifier email authorize {REPOSITORY} {ADDRESS}' mails it a confirmation link, and "
        f"opening the link (or 'notifier email confirm CODE' with its code) confirms it")


def test_a_header_injection_address_is_one_error_line(cli, smtp):
    result = cli.run("email", "authorize", REPOSITORY, f"{ADDRESS}\nBcc: victim@example.net")
    assert single_error_line(result).startswith("error: Invalid e-mail address: ")
    assert smtp.inbox.envelopes == []
    assert cli.stored_addresses() == 0


def test_an_unreachable_mail_server_stores_nothing(cli):
    cli.env["NOTIFIER_SMTP_PORT"] = str(free_port())
    result = cli.run("email", "authorize", REPOSITORY, ADDRESS)
    assert single_error_line(result).startswith("error: SMTP connection failed")
    assert cli.stored_addresses() == 0
