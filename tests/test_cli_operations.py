"""The on-call commands, as the real `notifier` command on SQLite and the local-folder broker:
what they show and change, and one clear error line for each bad input."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from notifier.db import make_engine, make_session_factory, transaction
from notifier.models import Attempt, Delivery, Event, Notification, utcnow
from notifier.notifications import create_notification
from tests.cli_support import Cli, single_error_line, succeeded

HOOK = {"url": "https://user:hunter2pass@hooks.example.com/in?token=qs3cret"}


@pytest.fixture
def cli(tmp_path) -> Cli:
    made = Cli(tmp_path)
    made.migrate()
    return made


@pytest.fixture
def factory(cli):
    engine = make_engine(cli.database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def ledger(factory) -> dict[str, str]:
    """A notification with a delivered, a failed (two attempts), a skipped and an old failed
    delivery; returns their ids (and the notification's uuid)."""
    now = utcnow()
    with transaction(factory) as session:
        notification = create_notification(session, "acme/web", "repo_push", "webhook", HOOK)
        ids = {"notification": notification.uuid}
        for label, state, created in (("delivered", "delivered", now),
                                      ("failed", "failed", now - timedelta(minutes=5)),
                                      ("skipped", "skipped", now - timedelta(minutes=1)),
                                      ("old", "failed", now - timedelta(days=3))):
            event = Event(id=str(uuid.uuid4()), repository="acme/web", name="repo_push",
                          payload={}, published_at=created, recorded_at=created)
            session.add(event)
            session.flush()
            delivery = Delivery(id=str(uuid.uuid4()), event_id=event.id, method="webhook",
                                notification_uuid=notification.uuid, state=state,
                                created_at=created, attempts=2 if state == "failed" else 1,
                                last_error="receiver answered HTTP 500" if state == "failed"
                                else None)
            session.add(delivery)
            session.flush()
            ids[label] = delivery.id
        session.add_all([
            Attempt(delivery_id=ids["failed"], number=1, started_at=now, duration_ms=12,
                    status_code=500, error="receiver answered HTTP 500",
                    response_excerpt="upstream exploded"),
            Attempt(delivery_id=ids["failed"], number=2, started_at=now, duration_ms=7,
                    error_kind="connect", error="connection refused")])
    return ids


def _state(factory, delivery_id: str) -> str:
    with factory() as session:
        return session.scalar(select(Delivery.state).where(Delivery.id == delivery_id))


# --- notification show | reset | delete -----------------------------------------------------

def test_notification_show_masks_secrets_and_lists_recent_deliveries(cli, ledger):
    shown = succeeded(cli.run("notification", "show", ledger["notification"]))
    assert "acme/web" in shown and ledger["failed"][:8] in shown
    assert "hunter2pass" not in shown and "qs3cret" not in shown

    view = json.loads(succeeded(cli.run("notification", "show", ledger["notification"],
                                        "--json")))
    assert [d["id"] for d in view["recent_deliveries"]] == \
        [ledger["delivered"], ledger["skipped"], ledger["failed"], ledger["old"]]
    assert view["enabled"] is True and "hunter2pass" not in json.dumps(view)


def test_notification_reset_enables_again(cli, ledger, factory):
    with transaction(factory) as session:
        notification = session.scalars(select(Notification)).one()
        notification.enabled, notification.number_of_failures = False, 3
        notification.disabled_reason = "3 failed deliveries in a row"
    printed = succeeded(cli.run("notification", "reset", ledger["notification"]))
    assert "enabled, with 0 failures" in printed
    with factory() as session:
        notification = session.scalars(select(Notification)).one()
    assert (notification.enabled, notification.number_of_failures,
            notification.disabled_reason) == (True, 0, None)


def test_notification_delete_asks_first_then_deletes_its_history(cli, ledger, factory):
    refused = cli.run("notification", "delete", ledger["notification"])  # no terminal: no
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert _state(factory, ledger["failed"]) == "failed"

    succeeded(cli.run("notification", "delete", ledger["notification"], "--yes"))
    with factory() as session:
        assert session.scalars(select(Notification)).all() == []
        assert session.scalars(select(Delivery)).all() == []
        assert session.scalars(select(Attempt)).all() == []


@pytest.mark.parametrize("command", [("show",), ("reset",), ("delete", "--yes")])
@pytest.mark.parametrize("bad", ["0b0e7e8e-0000-4000-8000-000000000000", "not-a-uuid", ""])
def test_notification_commands_name_an_unknown_uuid(cli, ledger, command, bad):
    line = single_error_line(cli.run("notification", command[0], bad, *command[1:]))
    assert f"no notification {bad}" in line


# --- deliveries show ------------------------------------------------------------------------

def test_deliveries_show_lists_every_attempt(cli, ledger):
    shown = succeeded(cli.run("deliveries", "show", ledger["failed"]))
    for text in ("receiver answered HTTP 500", "upstream exploded", "connection refused",
                 "12 ms", "500"):
        assert text in shown
    by_prefix = json.loads(succeeded(cli.run("deliveries", "show", ledger["failed"][:8],
                                             "--json")))
    assert by_prefix["id"] == ledger["failed"]
    assert [(a["number"], a["status_code"], a["error_kind"]) for a in by_prefix["attempt_log"]] \
        == [(1, 500, None), (2, None, "connect")]


@pytest.mark.parametrize("bad", ["nope", "0123456789abcdef", "1234567"])
def test_deliveries_show_names_an_unknown_id(cli, ledger, bad):
    assert f"no delivery {bad}" in single_error_line(cli.run("deliveries", "show", bad))


def test_deliveries_still_lists_without_a_subcommand(cli, ledger):
    listed = json.loads(succeeded(cli.run("deliveries", "--state", "failed", "--json")))
    assert {d["id"] for d in listed} == {ledger["failed"], ledger["old"]}


# --- redeliver ------------------------------------------------------------------------------

def test_redeliver_one_puts_it_back_to_pending_and_enqueues_it(cli, ledger, factory):
    printed = succeeded(cli.run("redeliver", ledger["failed"][:8]))
    assert printed.strip() == f"delivery {ledger['failed']} is pending again"
    assert _state(factory, ledger["failed"]) == "pending"
    assert len(cli.queued_files()) == 1


def test_redeliver_refuses_a_delivered_one(cli, ledger, factory):
    line = single_error_line(cli.run("redeliver", ledger["delivered"]))
    assert "is delivered: only failed or skipped deliveries can be sent again" in line
    assert _state(factory, ledger["delivered"]) == "delivered" and cli.queued_files() == []


def test_redeliver_in_bulk_since_a_time_and_by_state(cli, ledger, factory):
    printed = succeeded(cli.run("redeliver", "--notification", ledger["notification"],
                                "--since", "1h", "--state", "failed"))
    assert printed.strip() == "1 deliveries sent again"
    assert [_state(factory, ledger[label]) for label in ("failed", "skipped", "old")] == \
        ["pending", "skipped", "failed"]

    since = (utcnow() - timedelta(days=7)).isoformat().replace("+00:00", "Z")
    printed = succeeded(cli.run("redeliver", "--notification", ledger["notification"],
                                "--since", since))
    assert printed.strip() == "2 deliveries sent again"  # the skipped one and the old one
    assert len(cli.queued_files()) == 3


@pytest.mark.parametrize("args, expected", [
    (["--since", "yesterday"], "--since 'yesterday' is not a time"),
    (["--since", "2026-12-01T08:00:00"], "is not a time: give ISO 8601 with a zone"),
    (["--since", "-2h"], "is not a time"),
    (["--state", "bogus"], "only ['failed', 'skipped'] deliveries can be sent again"),
    (["--state", "delivered"], "only ['failed', 'skipped'] deliveries can be sent again"),
    (["--state", ","], "--state needs failed, skipped or both"),
])
def test_redeliver_in_bulk_refuses_bad_input(cli, ledger, factory, args, expected):
    line = single_error_line(cli.run("redeliver", "--notification", ledger["notification"],
                                     *args))
    assert expected in line
    assert _state(factory, ledger["failed"]) == "failed" and cli.queued_files() == []


@pytest.mark.parametrize("args, expected", [
    ([], "give one DELIVERY_ID, or --notification UUID"),
    (["abc", "--notification", "x"], "give one DELIVERY_ID, or --notification UUID"),
    (["abcdefgh", "--since", "1h"], "--since and --state go with --notification"),
    (["--notification", "0b0e7e8e-0000-4000-8000-000000000000"], "no notification"),
    (["0b0e7e8e-0000-4000-8000-000000000000"], "no delivery"),
])
def test_redeliver_refuses_bad_arguments(cli, ledger, args, expected):
    assert expected in single_error_line(cli.run("redeliver", *args))


# --- status ---------------------------------------------------------------------------------

def test_status_reports_the_fleet_and_its_problems(cli, ledger, factory):
    with transaction(factory) as session:
        notification = session.scalars(select(Notification)).one()
        notification.enabled, notification.disabled_reason = False, "the receiver answered 410"
        session.get(Delivery, ledger["failed"]).state = "retrying"
        session.get(Delivery, ledger["failed"]).next_attempt_at = utcnow() - timedelta(minutes=9)

    report = json.loads(succeeded(cli.run("status", "--json", "--timeout", "0.5")))
    assert report["deliveries_waiting"] == {"pending": 0, "delivering": 0, "retrying": 1}
    assert 500 < report["oldest_due_delivery_age_s"] < 600
    assert report["queue_lengths"] == {"notifier.fanout": 0, "notifier.delivery": 0}
    assert report["workers"] == {"notifier.fanout": [], "notifier.delivery": []}
    assert report["notifications_disabled"] == 1
    assert report["disabled"][0]["disabled_reason"] == "the receiver answered 410"
    assert report["scheduler_last_run"] is None
    assert "no worker consumes notifier.delivery" in report["problems"]
    assert any("oldest due delivery waits" in p for p in report["problems"])

    table = succeeded(cli.run("status", "--timeout", "0.5"))
    assert "scheduler: never ran" in table and "1 disabled" in table
    assert "problems: no worker consumes notifier.fanout" in table


def test_status_refuses_a_bad_timeout(cli):
    assert "--timeout" in single_error_line(cli.run("status", "--timeout", "0"))


# --- db upgrade --wait ----------------------------------------------------------------------

def test_db_upgrade_waits_for_an_unreachable_database_then_says_so(tmp_path):
    from tests.fleet import free_port

    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/x"
    started = time.monotonic()
    line = single_error_line(Cli(tmp_path).run("db", "upgrade", "--wait", "2",
                                               NOTIFIER_DATABASE_URL=nowhere))
    assert "database unreachable after 2 s" in line
    assert 1.5 < time.monotonic() - started < 30


def test_db_upgrade_with_wait_migrates_a_reachable_database(tmp_path):
    assert "up to date" in succeeded(Cli(tmp_path).run("db", "upgrade", "--wait", "5"))
