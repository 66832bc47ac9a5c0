"""The real `notifier` command, run as a subprocess on SQLite and the filesystem broker.

Every expected error is one line on stderr starting "error:", a non-zero exit, no traceback;
a refused publish leaves nothing in the broker's queue folder.
"""

from __future__ import annotations

import json
import uuid

import pytest

from notifier.db import make_engine, make_session_factory
from notifier.notifications import get_notification
from tests.cli_support import Cli, single_error_line, succeeded

PUSH = '{"updated_tags": ["v1"]}'
HOOK = '{"url": "https://hooks.example.com/in"}'


@pytest.fixture
def cli(tmp_path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def migrated_cli(cli) -> Cli:
    cli.migrate()
    return cli


# --- what works ---------------------------------------------------------------------------

def test_db_upgrade_creates_the_schema_and_can_run_again(cli):
    assert succeeded(cli.run("db", "upgrade")).strip() == "database is up to date"
    assert succeeded(cli.run("db", "upgrade")).strip() == "database is up to date"

    assert json.loads(succeeded(cli.run("deliveries", "--json"))) == []


def test_deliveries_as_json_is_an_empty_list_at_first(migrated_cli):
    assert json.loads(succeeded(migrated_cli.run("deliveries", "--json"))) == []


def test_deliveries_as_a_table(migrated_cli):
    assert "state" in succeeded(migrated_cli.run("deliveries"))


def test_notification_add_prints_the_uuid_it_stored(migrated_cli):
    result = migrated_cli.run("notification", "add", "acme/web", "--event", "build_success",
                              "--method", "webhook", "--config", HOOK,
                              "--event-config", '{"ref-regex": "refs/heads/main"}')

    printed = succeeded(result).strip()
    assert uuid.UUID(printed)
    engine = make_engine(migrated_cli.database_url)
    try:
        with make_session_factory(engine)() as session:
            stored = get_notification(session, printed)
            assert (stored.repository, stored.event, stored.event_config) == (
                "acme/web", "build_success", {"ref-regex": "refs/heads/main"})
    finally:
        engine.dispose()


@pytest.mark.parametrize("event_id", [None, "registry-42"])
def test_publish_prints_the_event_id_and_enqueues_one_message(cli, event_id):
    extra = ["--event-id", event_id] if event_id else []

    printed = succeeded(cli.run("publish", "acme/web", "repo_push", "--data", PUSH, *extra))

    assert (printed.strip() == event_id) if event_id else uuid.UUID(printed.strip())
    assert len(cli.queued_files()) == 1


# --- what fails, in one line ---------------------------------------------------------------------

ADD = ["notification", "add", "acme/web", "--event", "repo_push", "--method", "webhook"]


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        pytest.param([*ADD, "--config", "{bad"], {}, "--config is not valid JSON",
                     id="add-malformed-config"),
        pytest.param(["notification", "add", "acme/web", "--event", "nope", "--method",
                      "webhook", "--config", HOOK], {}, "Unknown event 'nope'",
                     id="add-unknown-event"),
        pytest.param(["notification", "add", "acme/web", "--event", "repo_push", "--method",
                      "nope", "--config", HOOK], {}, "Unknown notification method 'nope'",
                     id="add-unknown-method"),
        pytest.param([*ADD, "--config", "{}"], {}, "Missing webhook URL", id="add-missing-url"),
        pytest.param([*ADD, "--config", HOOK, "--event-config", '{"level": 1}'], {},
                     "Unknown eventConfig key 'level'", id="add-bad-event-config"),
        pytest.param(["notification", "add", "acme/web", "--method", "webhook", "--config", HOOK],
                     {}, "Missing option '--event'", id="add-usage-error"),
        pytest.param(["deliveries", "--state", "lost"], {}, "'lost'", id="deliveries-bad-state"),
        pytest.param(["deliveries"],
                     {"NOTIFIER_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x"},
                     "database unreachable", id="deliveries-unreachable-database"),
    ],
)
def test_a_refused_command_prints_one_error_line(migrated_cli, args, env, says):
    line = single_error_line(migrated_cli.run(*args, **env))

    assert says in line


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        pytest.param(["acme/web", "repo_push", "--data", "{}"], {}, "'updated_tags'",
                     id="missing-field"),
        pytest.param(["acme/web", "repo_push", "--data", "{x"], {}, "--data is not valid JSON",
                     id="malformed-data"),
        pytest.param(["acme/web", "repo_push", "--data", PUSH, "--performer", "alice"], {},
                     "--performer is not valid JSON", id="malformed-performer"),
        pytest.param(["acme/web", "nope", "--data", PUSH], {}, "Unknown event 'nope'",
                     id="unknown-event"),
        pytest.param(["acme/web", "repo_push", "--data", PUSH, "--event-id", "no spaces"], {},
                     "event_id", id="bad-event-id"),
        pytest.param(["noslash", "repo_push", "--data", PUSH], {}, "namespace/name",
                     id="bad-repository"),
        pytest.param(["acme/web", "repo_push", "--data", PUSH],
                     {"NOTIFIER_BROKER_URL": "redis://127.0.0.1:1/0"},
                     "broker unreachable at redis://127.0.0.1:1/0", id="unreachable-broker"),
        pytest.param(["acme/web", "repo_push", "--data", PUSH], {"NOTIFIER_MAX_FAILURES": "x"},
                     "NOTIFIER_MAX_FAILURES", id="bad-setting"),
    ],
)
def test_a_refused_publish_prints_one_error_line_and_enqueues_nothing(cli, args, env, says):
    line = single_error_line(cli.run("publish", *args, **env))

    assert says in line
    assert cli.queued_files() == []


def test_an_unreachable_broker_says_nothing_was_enqueued(cli):
    result = cli.run("publish", "acme/web", "repo_push", "--data", PUSH,
                     NOTIFIER_BROKER_URL="redis://127.0.0.1:1/0")

    assert "nothing was enqueued" in single_error_line(result)


@pytest.mark.parametrize("args", [["deliveries"], ["deliveries", "--json"],
                                  ["notification", "add", "acme/web", "--event", "repo_push",
                                   "--method", "webhook", "--config", HOOK]])
def test_commands_before_db_upgrade_say_to_run_it(cli, args):
    line = single_error_line(cli.run(*args))

    assert "not migrated" in line and "notifier db upgrade" in line


def test_a_bad_setting_is_one_line_for_any_command(cli):
    line = single_error_line(cli.run("deliveries", NOTIFIER_MAX_FAILURES="x"))

    assert line.startswith("error: bad setting: NOTIFIER_MAX_FAILURES")
