"""`notifier email authorize|confirm` as a subprocess on SQLite, mailing a real SMTP server, and
the email method's create-time check through `notifier notification add`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from notifier.db import make_engine, make_session_factory
from notifier.models import AuthorizedEmail
from tests.smtp import SmtpServer, free_port

TIMEOUT_S = 60
COMMAND = [sys.executable, "-m", "notifier.cli"]
ADDRESS = "dev@example.com"
REPOSITORY = "acme/web"
LINK = re.compile(r"https://registry\.example\.com/authrepoemail\?code=([A-Za-z0-9_-]+)")
NOT_AUTHORIZED = ("error: The specified e-mail address is not authorized to receive notifications "
                  "for this repository")


class EmailCli:
    """Runs `notifier` with its own SQLite database, mailing through ``smtp_port``."""

    def __init__(self, folder: Path, smtp_port: int):
        self.database_url = f"sqlite:///{folder / 'n.db'}"
        self.folder = folder
        self.env = {name: value for name, value in os.environ.items()
                    if not name.startswith("NOTIFIER_")}
        self.env.update(NOTIFIER_DATABASE_URL=self.database_url,
                        NOTIFIER_SMTP_HOST="127.0.0.1", NOTIFIER_SMTP_PORT=str(smtp_port),
                        NOTIFIER_SMTP_TIMEOUT_S="5",
                        NOTIFIER_SERVER_HOSTNAME="registry.example.com",
                        NOTIFIER_PREFERRED_URL_SCHEME="https")

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*COMMAND, *args], cwd=self.folder, env=self.env,
                              capture_output=True, text=True, timeout=TIMEOUT_S)

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


def succeeded(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def single_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    return lines[0]


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
    assert single_error_line(result) == NOT_AUTHORIZED


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
