"""The dead-letter store on both databases, and its commands with bad input."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import delete

from notifier.db import transaction
from notifier.deadletters import (bury, count_dead_letters, dead_letter_ids, drop,
                                  get_dead_letter, list_dead_letters, replay)
from notifier.errors import NotFound
from notifier.models import DeadLetter, utcnow
from tests.cli_support import Cli, single_error_line, succeeded

@pytest.fixture
def factory(factory):
    """Both databases, with an empty dead-letter store before and after the test."""
    def empty():
        with transaction(factory) as session:
            session.execute(delete(DeadLetter))
    empty()
    yield factory
    empty()


MESSAGE = {"event_id": "ev-1", "repository": "acme/web", "event": "repo_push",
           "data": {"updated_tags": ["a\u0000b"]}, "performer": {}, "published_at": "x"}


def test_bury_keeps_any_payload_with_its_reason(factory):
    with transaction(factory) as session:
        first = bury(session, "notifier.fan_out", [MESSAGE], reason="KeyError: 'x'", tries=5,
                     now=utcnow())
        second = bury(session, "notifier.fan_out", ["not a dict"], reason="r" * 5000, tries=1,
                      now=utcnow())
    with factory() as session:
        views = list_dead_letters(session)
        assert count_dead_letters(session) == 2
        assert dead_letter_ids(session) == [first, second]
    assert [v["id"] for v in views] == [second, first]  # newest first
    assert views[1]["args"] == [MESSAGE]  # the NUL survives, escaped
    assert (views[1]["event_id"], views[1]["repository"], views[1]["event"]) == \
        ("ev-1", "acme/web", "repo_push")
    assert views[0]["event_id"] is None and len(views[0]["reason"]) == 1000


def test_drop_and_unknown_ids(factory):
    with transaction(factory) as session:
        letter = bury(session, "notifier.fan_out", [MESSAGE], reason="r", tries=1, now=utcnow())
    with transaction(factory) as session:
        drop(session, letter)
    with factory() as session:
        assert count_dead_letters(session) == 0
        with pytest.raises(NotFound, match=f"no dead letter with id {letter}"):
            get_dead_letter(session, letter)


class RecordingProducer:
    def __init__(self, fail: Exception | None = None):
        self.sent, self.fail = [], fail

    def resend(self, task, args):
        if self.fail:
            raise self.fail
        self.sent.append((task, args))


def test_replay_sends_the_message_as_it_was_then_forgets_it(factory):
    with transaction(factory) as session:
        letter = bury(session, "notifier.fan_out", [MESSAGE], reason="r", tries=1, now=utcnow())
    producer = RecordingProducer()
    replay(factory, producer, letter)
    assert producer.sent == [("notifier.fan_out", [MESSAGE])]
    with factory() as session:
        assert count_dead_letters(session) == 0


def test_a_replay_the_broker_refuses_keeps_the_dead_letter(factory):
    from notifier.errors import BrokerUnavailable

    with transaction(factory) as session:
        letter = bury(session, "notifier.fan_out", [MESSAGE], reason="r", tries=1, now=utcnow())
    with pytest.raises(BrokerUnavailable):
        replay(factory, RecordingProducer(BrokerUnavailable("down")), letter)
    with factory() as session:
        assert dead_letter_ids(session) == [letter]


@pytest.fixture
def cli(tmp_path) -> Cli:
    made = Cli(tmp_path)
    made.migrate()
    return made


@pytest.mark.parametrize("args, says", [
    (["dead-letters", "replay"], "give a dead letter's ID or --all (not both)"),
    (["dead-letters", "replay", "3", "--all"], "give a dead letter's ID or --all (not both)"),
    (["dead-letters", "replay", "abc"], "'abc' is not a valid integer"),
    (["dead-letters", "replay", "42"], "no dead letter with id 42"),
    (["dead-letters", "drop", "42"], "no dead letter with id 42"),
    (["dead-letters", "drop"], "Missing argument 'ID'"),
    (["dead-letters", "drop", "1", "2"], "unexpected extra argument"),
    (["dead-letters", "list", "--limit", "0"], "0 is not in the range"),
    (["dead-letters", "list", "--since", "x"], "No such option '--since'"),
])
def test_bad_input_to_the_dead_letter_commands_is_one_line(cli, args, says):
    assert says in single_error_line(cli.run(*args))


def test_the_dead_letter_commands_list_replay_and_drop(cli):
    from notifier.db import make_engine, make_session_factory

    factory = make_session_factory(make_engine(cli.database_url))
    with transaction(factory) as session:
        one = bury(session, "notifier.fan_out", [MESSAGE], reason="KeyError: 'x'", tries=5,
                   now=utcnow())
        two = bury(session, "notifier.fan_out", [MESSAGE], reason="r", tries=5, now=utcnow())
    table = succeeded(cli.run("dead-letters", "list"))
    assert "KeyError: 'x'" in table and "acme/web" in table
    assert [v["id"] for v in json.loads(succeeded(cli.run("dead-letters", "list", "--json")))] \
        == [two, one]
    assert succeeded(cli.run("dead-letters", "drop", str(one))).strip() == \
        f"dropped dead letter {one}"
    assert succeeded(cli.run("dead-letters", "replay", "--all")).strip() == \
        f"replayed dead letter {two}"
    assert len(cli.queued_files()) == 1  # the fan-out message, back in the broker
    assert succeeded(cli.run("dead-letters", "list")).strip() == "no dead letters"
    assert succeeded(cli.run("dead-letters", "replay", "--all")).strip() == "no dead letters"


def test_a_delivery_that_cannot_be_attempted_ends_failed_with_the_reason(factory, unique_repo):
    from notifier.fanout import event_message, fan_out
    from notifier.ledger import abandon_delivery
    from notifier.models import Delivery
    from notifier.netpolicy import parse_networks
    from notifier.notifications import create_notification

    with transaction(factory) as session:
        notification = create_notification(
            session, unique_repo, "repo_push", "webhook", {"url": "http://127.0.0.1:9/h"},
            allowed_networks=parse_networks(["127.0.0.0/8"]))
        message = event_message(unique_repo, "repo_push", {"updated_tags": ["a"]}, {},
                                "ev-abandon", utcnow())
        [ref] = fan_out(session, message, server_hostname="registry.example.com",
                        scheme="https")
    with transaction(factory) as session:
        assert abandon_delivery(session, ref.id, "not attempted: KeyError: 'x'")
        assert not abandon_delivery(session, ref.id, "again")  # only a pending one
    with factory() as session:
        delivery = session.get(Delivery, ref.id)
    assert (delivery.state, delivery.last_error) == ("failed", "not attempted: KeyError: 'x'")
    assert delivery.notification_uuid == notification.uuid
