"""The fan-out of one event costs a bounded number of statements, however many notifications
it reaches (counted with SQLAlchemy's cursor events, not timed), and never waits for the row
locks claims and records hold."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import event, func, insert, select, text, update

from notifier.db import insert_ignore, transaction
from notifier.delivery import Policy
from notifier.fanout import event_message, fan_out
from notifier.models import Delivery, EndpointSlot, Event, Notification, utcnow


POLICY = Policy(retry_schedule_s=(0, 60), max_failures=3, claim_timeout_s=30,
                max_in_flight_per_endpoint=8)


def _add_notifications(factory, repository: str, count: int, port: int = 9000) -> None:
    """``count`` webhook notifications over ten receivers (rows written directly: fast)."""
    rows = [{"repository": repository, "event": "repo_push", "method": "webhook",
             "config": {"url": f"http://127.0.0.1:{port + n % 10}/hook"}, "event_config": {}}
            for n in range(count)]
    with transaction(factory) as session:
        session.execute(insert(Notification), rows)


def _statements_of_fan_out(factory, repository: str) -> tuple[int, int]:
    """(statements, deliveries returned) of one fan-out unit of work."""
    engine = factory.kw["bind"]
    statements = []

    def count(*_):
        statements.append(1)

    message = event_message(repository, "repo_push", {"updated_tags": ["a"]}, {},
                            f"event-{repository}", utcnow())
    event.listen(engine, "before_cursor_execute", count)
    try:
        with transaction(factory) as session:
            refs = fan_out(session, message, server_hostname="registry.example.com",
                           scheme="https", policy=POLICY)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(statements), len(refs)


def test_one_event_to_a_thousand_notifications_costs_the_statements_of_one(factory,
                                                                            unique_repo):
    _add_notifications(factory, f"{unique_repo}-one", 1)
    _add_notifications(factory, f"{unique_repo}-many", 1000)

    one, one_refs = _statements_of_fan_out(factory, f"{unique_repo}-one")
    many, many_refs = _statements_of_fan_out(factory, f"{unique_repo}-many")

    assert (one_refs, many_refs) == (1, 1000)
    assert many == one <= 8
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)
                              .where(Delivery.event_id == f"event-{unique_repo}-many")) == 1000
        assert session.scalar(select(func.count()).select_from(EndpointSlot)
                              .where(EndpointSlot.endpoint.like("127.0.0.1:90%"))) == 10


def test_a_repeated_fan_out_is_as_cheap_and_creates_nothing(factory, unique_repo):
    count = 1000
    _add_notifications(factory, unique_repo, count)
    first, _ = _statements_of_fan_out(factory, unique_repo)
    again, refs = _statements_of_fan_out(factory, unique_repo)
    assert again == first and refs == count  # still pending: enqueued again, harmless
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)
                              .where(Delivery.event_id == f"event-{unique_repo}")) == count


def test_deliveries_parked_at_paced_endpoints_cost_no_more_statements(factory, unique_repo):
    """Half the ten endpoints paced and full: their 500 deliveries wait for tickets, all taken
    in one statement more (none is taken while no endpoint is paced and full)."""
    _add_notifications(factory, f"{unique_repo}-one", 1, port=9100)
    _add_notifications(factory, f"{unique_repo}-many", 1000, port=9100)
    one, _ = _statements_of_fan_out(factory, f"{unique_repo}-one")
    paced = [f"127.0.0.1:{9100 + n}" for n in range(5)]
    with transaction(factory) as session:
        session.execute(insert_ignore(session, EndpointSlot),
                        [{"endpoint": endpoint} for endpoint in paced])
        session.execute(update(EndpointSlot).where(EndpointSlot.endpoint.in_(paced))
                        .values(slow_limit=1, in_flight=1))
    many, refs = _statements_of_fan_out(factory, f"{unique_repo}-many")
    assert (many, refs) == (one + 1, 500)
    with factory() as session:
        waits = sorted(session.scalars(
            select(Delivery.next_attempt_at).where(
                Delivery.event_id == f"event-{unique_repo}-many",
                Delivery.state == "retrying", Delivery.endpoint == "127.0.0.1:9100")))
    assert len(waits) == 100 and (waits[-1] - waits[0]).total_seconds() == \
        pytest.approx(99, abs=0.1)  # one slot: a round apart


def test_an_event_no_notification_concerns_is_recorded_all_the_same(factory, unique_repo):
    _add_notifications(factory, f"{unique_repo}-one", 1)
    one, _ = _statements_of_fan_out(factory, f"{unique_repo}-one")
    none, refs = _statements_of_fan_out(factory, f"{unique_repo}-none")
    assert none <= one and refs == 0
    with factory() as session:
        assert session.get(Event, f"event-{unique_repo}-none") is not None


def test_fan_out_does_not_wait_for_a_claim_holding_its_endpoint_slot(pg_factory, unique_repo):
    """A claim or record keeps its endpoint's slot row locked until its commit is on disk;
    fan-out, which only makes sure the row exists, reads past the lock instead of queueing
    behind it (as INSERT ... ON CONFLICT DO NOTHING would)."""
    port = random.randrange(20000, 60000)  # an endpoint of this test's own
    endpoint = f"127.0.0.1:{port}"
    _add_notifications(pg_factory, unique_repo, 1, port=port)
    _statements_of_fan_out(pg_factory, unique_repo)  # the slot row exists now
    with pg_factory() as holder, pg_factory() as session:
        holder.execute(update(EndpointSlot).where(EndpointSlot.endpoint == endpoint)
                       .values(in_flight=EndpointSlot.in_flight + 1))  # as a claim does
        session.execute(text("SET LOCAL lock_timeout = '2s'"))
        refs = fan_out(session, event_message(unique_repo, "repo_push", {"updated_tags": ["b"]},
                                              {}, f"second-{unique_repo}", utcnow()),
                       server_hostname="registry.example.com", scheme="https", policy=POLICY)
        session.commit()
        holder.rollback()
    assert [ref.method for ref in refs] == ["webhook"]
