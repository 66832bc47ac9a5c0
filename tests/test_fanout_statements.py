"""The fan-out of one event costs a bounded number of statements, however many notifications
it reaches (counted with SQLAlchemy's cursor events, not timed)."""

from __future__ import annotations

from sqlalchemy import event, func, insert, select

from notifier.db import transaction
from notifier.fanout import event_message, fan_out
from notifier.models import Delivery, EndpointSlot, Notification, utcnow


def _add_notifications(factory, repository: str, count: int) -> None:
    """``count`` webhook notifications over ten receivers (rows written directly: fast)."""
    rows = [{"repository": repository, "event": "repo_push", "method": "webhook",
             "config": {"url": f"http://127.0.0.1:{9000 + n % 10}/hook"}, "event_config": {}}
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
                           scheme="https")
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
