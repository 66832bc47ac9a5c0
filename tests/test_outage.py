"""Telling a database outage from a bad message, and riding it out: real errors from a real
PostgreSQL and SQLite, an injected clock for the once-per-interval log."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, ProgrammingError

from notifier.db import make_engine, transaction
from notifier.errors import DatabaseNotReady
from notifier.models import Event, utcnow
from notifier.outage import Outage, first_line, is_database_unavailable
from tests.fleet import free_port


def error_of(engine, statement: str) -> Exception:
    with pytest.raises(Exception) as caught:
        with engine.connect() as connection:
            connection.execute(text(statement))
    return caught.value


def test_a_server_that_refuses_connections_is_an_outage():
    engine = make_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")
    exc = error_of(engine, "SELECT 1")
    assert is_database_unavailable(exc)
    assert "Connection refused" in first_line(exc) or "connection failed" in first_line(exc)


def test_a_missing_table_is_an_outage_until_someone_migrates(postgres_url):
    assert is_database_unavailable(error_of(make_engine(postgres_url), "SELECT * FROM nope"))
    assert is_database_unavailable(DatabaseNotReady("database is not migrated"))


def test_a_bad_statement_or_row_is_not_an_outage(pg_factory):
    engine = pg_factory.kw["bind"]
    assert not is_database_unavailable(error_of(engine, "SELECT 1/0"))
    row = dict(id="same", repository="a/b", name="repo_push", payload={}, performer={},
               published_at=utcnow(), recorded_at=utcnow())
    with pytest.raises(IntegrityError) as caught:
        for _ in range(2):
            with transaction(pg_factory) as session:
                session.add(Event(**row))
    assert not is_database_unavailable(caught.value)
    assert not is_database_unavailable(KeyError("repository"))
    assert not isinstance(caught.value, ProgrammingError)


def test_an_sqlite_file_that_cannot_be_opened_is_an_outage(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/gone/x.db")  # makes the folder
    (tmp_path / "gone").rmdir()
    (tmp_path / "gone").write_text("a file where the folder should be")
    assert is_database_unavailable(error_of(engine, "SELECT 1"))


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_call_retries_while_the_database_is_away_then_returns(caplog):
    clock = Clock()
    outage = Outage(wait_s=30, log_interval_s=10, clock=clock, sleep=clock.sleep)
    down = make_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    failures = iter(range(3))

    def operation():
        if next(failures, None) is not None:
            with down.connect():
                pass
        return "recorded"

    with caplog.at_level(logging.WARNING, logger="notifier.outage"):
        assert outage.call(operation) == "recorded"
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("database unavailable for 0 s (")
    assert messages[-1].startswith("database reachable again after")
    assert not outage.down


def test_call_gives_up_after_its_bound_and_says_so_once_per_interval(caplog):
    clock = Clock()
    outage = Outage(wait_s=25, log_interval_s=10, clock=clock, sleep=clock.sleep)
    down = make_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    tries = []

    def operation():
        tries.append(clock.now)
        with down.connect():
            pass

    with caplog.at_level(logging.WARNING, logger="notifier.outage"):
        with pytest.raises(Exception) as caught:
            outage.call(operation)
    assert is_database_unavailable(caught.value)
    assert outage.down
    # Backoff: a few tries, not a busy loop, and never past the bound.
    assert 4 <= len(tries) <= 12 and clock.now <= 25 + 5
    gaps = [b - a for a, b in zip(tries, tries[1:])]
    assert max(gaps) <= 5.0 + 1e-9
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert 1 <= len(warnings) <= 1 + clock.now // 10


def test_call_stops_waiting_when_the_worker_is_stopping():
    clock = Clock()
    outage = Outage(wait_s=300, log_interval_s=60, clock=clock, sleep=clock.sleep)
    down = make_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/x")

    def operation():
        with down.connect():
            pass

    with pytest.raises(Exception):
        outage.call(operation, stopping=lambda: clock.now >= 1.0)
    assert clock.now < 2.0


def test_a_bad_message_is_not_retried():
    outage = Outage(wait_s=30, log_interval_s=10)
    calls = []

    def operation():
        calls.append(1)
        raise KeyError("repository")

    with pytest.raises(KeyError):
        outage.call(operation)
    assert calls == [1]
