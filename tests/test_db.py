"""Database error texts never quote the statement's parameters (a notification's config holds
secrets, and error texts reach logs); statements run on the driver behave as SQLAlchemy's."""

from __future__ import annotations

from datetime import timezone

import pytest
from sqlalchemy import bindparam, event, insert, literal, select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from notifier.db import all_rows, first_row, hot, insert_ignore_rows, transaction
from notifier.models import EndpointSlot, Event, Notification, utcnow


def test_an_error_text_does_not_quote_the_parameters(factory):
    secret = "whsec_do-not-log-me-0123456789"
    with factory() as session, pytest.raises(SQLAlchemyError) as caught:
        session.execute(insert(Notification).values(
            uuid="x" * 40, repository="a/b", event="repo_push", method="webhook",  # too long
            config={"url": "http://127.0.0.1:9/", "secret": secret}, event_config={},
            number_of_failures=0, enabled=True))
        session.execute(insert(Notification).values(
            uuid="x" * 40, repository="a/b", event="repo_push", method="webhook",
            config={"secret": secret}, event_config={}, number_of_failures=0, enabled=True))

    assert secret not in str(caught.value)
    assert "hidden due to hide_parameters" in str(caught.value)


# --- statements run on the driver (notifier.db: first_row, all_rows, insert_ignore_rows) -----

def _slots(session, prefix: str) -> list[dict]:
    return all_rows(session, select(EndpointSlot.endpoint, EndpointSlot.in_flight,
                                    EndpointSlot.busy_until_s)
                    .where(EndpointSlot.endpoint.like(bindparam("prefix")))
                    .order_by(EndpointSlot.endpoint), {"prefix": f"{prefix}%"})


def test_rows_go_in_as_one_statement_with_defaults_and_existing_ones_skipped(factory,
                                                                              unique_repo):
    statements = []
    engine = factory.kw["bind"]

    def count(_connection, _cursor, statement, *_):
        statements.append(statement.split()[0])

    event.listen(engine, "before_cursor_execute", count)
    try:
        with transaction(factory) as session:
            insert_ignore_rows(session, EndpointSlot.__table__,
                               [{"endpoint": f"{unique_repo}:{n}"} for n in range(3)])
    finally:
        event.remove(engine, "before_cursor_execute", count)
    with transaction(factory) as session:
        insert_ignore_rows(session, EndpointSlot.__table__,
                           [{"endpoint": f"{unique_repo}:2", "in_flight": 5},
                            {"endpoint": f"{unique_repo}:3", "in_flight": 1}])
    with factory() as session:
        slots = _slots(session, unique_repo)

    assert statements.count("INSERT") == 1  # three rows, one statement (SQLite: executemany)
    assert [(s["endpoint"][-1], s["in_flight"], s["busy_until_s"]) for s in slots] == [
        ("0", 0, 0.0), ("1", 0, 0.0), ("2", 0, 0.0), ("3", 1, 0.0)]  # :2 kept as it was


def test_json_goes_in_and_comes_out_as_it_was(factory, unique_repo):
    payload = {"repository": unique_repo, "tags": ["latest", "é"], "nested": {"n": 1.5}}
    now = utcnow()
    with transaction(factory) as session:
        insert_ignore_rows(session, Event.__table__, [{
            "id": f"{unique_repo}-event", "repository": unique_repo, "name": "repo_push",
            "payload": payload, "performer": {}, "published_at": now, "recorded_at": now}])
    with factory() as session:
        row = first_row(session, select(Event.payload, Event.performer, Event.recorded_at)
                        .where(Event.id == bindparam("id")), {"id": f"{unique_repo}-event"})
        missing = first_row(session, select(Event.id).where(Event.id == bindparam("id")),
                            {"id": "no-such-event"})

    assert row["payload"] == payload and row["performer"] == {}
    assert row["recorded_at"].replace(tzinfo=timezone.utc) == now  # SQLite keeps no zone
    assert missing is None


def test_rows_without_a_column_whose_default_is_computed_are_refused(pg_factory):
    """On PostgreSQL only: through SQLAlchemy (SQLite) the default is computed as usual."""
    with transaction(pg_factory) as session, pytest.raises(ValueError) as refused:
        insert_ignore_rows(session, Event.__table__, [{"id": "e", "repository": "a/b"}])
    assert "rows for events must give" in str(refused.value)


def test_a_connection_lost_under_a_driver_statement_is_reported_as_sqlalchemy_would(
        pg_factory):
    engine = pg_factory.kw["bind"]
    with engine.connect() as connection:
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with engine.connect() as other:
            other.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
            other.commit()
        with pytest.raises(DBAPIError) as lost:
            first_row(connection, select(literal(1).label("one")), {})
    assert lost.value.connection_invalidated  # so reconnecting() runs the work again
    with engine.connect() as connection:
        assert first_row(connection, select(literal(1).label("one")), {}) == {"one": 1}


def test_statements_on_a_threads_hot_connection_are_seen_by_the_engines_listeners(factory):
    """The claim, the record and fan-out run on a connection of another engine (PostgreSQL:
    autocommit, no pool); statement counters listening on the worker's engine see them."""
    engine = factory.kw["bind"]
    statements = []

    def keep(_connection, _cursor, statement, *_):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", keep)
    try:
        with hot(factory) as db:
            row = first_row(db, select(literal(7).label("seven")), {})
            db.commit()
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    assert row == {"seven": 7}
    assert [s for s in statements if "seven" in s]
