"""API tokens can be listed (never shown), revoked and made to expire: the command line and
what authentication then says."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import update

from notifier.api.tokens import authenticate
from notifier.db import make_engine, make_session_factory, transaction
from notifier.models import ApiToken, utcnow
from tests.cli_support import Cli, single_error_line, succeeded


def who(cli: Cli, token: str):
    engine = make_engine(cli.database_url)
    try:
        with make_session_factory(engine)() as session:
            return authenticate(session, token, frozenset())
    finally:
        engine.dispose()


def test_tokens_are_listed_without_themselves_then_revoked(tmp_path):
    cli = Cli(tmp_path)
    cli.migrate()
    succeeded(cli.run("directory", "user", "add", "alice"))
    user_token = succeeded(cli.run("token", "create", "--user", "alice")).strip()
    service_token = succeeded(cli.run("token", "create", "--service", "registry",
                                      "--expires-in-days", "30")).strip()

    listed = json.loads(succeeded(cli.run("token", "list", "--json")))
    text = succeeded(cli.run("token", "list"))

    assert [(t["kind"], t["name"], t["expires"] is None) for t in listed] == [
        ("user", "alice", True), ("service", "registry", False)]
    assert user_token not in text + json.dumps(listed) and service_token not in text
    assert who(cli, user_token).name == "alice"

    succeeded(cli.run("token", "revoke", str(listed[0]["id"])))

    assert who(cli, user_token) is None
    assert who(cli, service_token).name == "registry"
    assert "no token with id" in single_error_line(cli.run("token", "revoke",
                                                           str(listed[0]["id"])))


def test_an_expired_token_no_longer_authenticates(tmp_path):
    cli = Cli(tmp_path)
    cli.migrate()
    token = succeeded(cli.run("token", "create", "--service", "registry",
                              "--expires-in-days", "1")).strip()
    assert who(cli, token) is not None

    engine = make_engine(cli.database_url)
    with transaction(make_session_factory(engine)) as session:
        session.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    engine.dispose()

    assert who(cli, token) is None
