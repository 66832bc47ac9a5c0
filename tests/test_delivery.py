"""The delivery hot path in-process, on PostgreSQL and SQLite: claim, record, the per-endpoint
counter and the wait for a full endpoint."""

from __future__ import annotations

import random
import threading
from contextlib import contextmanager
from datetime import timedelta
from typing import Iterator

import psycopg
import pytest
from sqlalchemy import delete, select, update

from notifier.db import make_engine, make_session_factory, transaction
from notifier.delivery import Policy, run_delivery
from notifier.fanout import event_message, fan_out
from notifier.http import HttpClient
from notifier.methods import Services
from notifier.models import Attempt, Delivery, EndpointSlot, Notification, utcnow
from notifier.netpolicy import parse_networks
from notifier.notifications import create_notification
from notifier.scheduler import recover_lost
from tests.receivers import Receiver

POLICY = Policy(retry_schedule_s=(0, 0.1, 0.2), max_failures=3, claim_timeout_s=30,
                max_in_flight_per_endpoint=2)


def _publish(factory, repository: str, urls: list[str]) -> list[str]:
    """One notification per URL, one event: returns the delivery ids."""
    with transaction(factory) as session:
        for url in urls:
            create_notification(session, repository, "repo_push", "webhook", {"url": url},
                                allowed_networks=parse_networks(["127.0.0.0/8"]))
    return [ref.id for ref in _event(factory, repository)]


def _event(factory, repository: str):
    """One more event to the repository's notifications, fanned out as the worker does."""
    message = event_message(repository, "repo_push", {"updated_tags": ["a"]}, {},
                            f"ev-{random.getrandbits(40)}", utcnow())
    with transaction(factory) as session:
        return fan_out(session, message, server_hostname="registry.example.com",
                       scheme="https", policy=POLICY)


def _deliver(factory, services, delivery_id):
    return run_delivery(factory, delivery_id, policy=POLICY, services=services)


@contextmanager
def _held() -> Iterator[tuple[Receiver, list[threading.Thread]]]:
    """A receiver that holds every request until the block ends, and the list of delivery
    threads (``_start``) to finish then."""
    slow = Receiver(hold=threading.Event())
    threads = []
    try:
        yield slow, threads
    finally:
        slow.hold.set()
        for thread in threads:
            thread.join(timeout=30)
        slow.close()


def _start(factory, services, delivery_ids: list[str], threads: list) -> None:
    for delivery_id in delivery_ids:
        thread = threading.Thread(target=_deliver, args=(factory, services, delivery_id))
        thread.start()
        threads.append(thread)


def _slot(factory, endpoint_of: str) -> EndpointSlot:
    with factory() as session:
        endpoint = session.scalar(select(Delivery.endpoint).where(Delivery.id == endpoint_of))
        return session.get(EndpointSlot, endpoint)


def test_delivered_records_one_attempt_and_frees_the_slot(factory, loopback_services, receiver,
                                                          unique_repo):
    [delivery_id] = _publish(factory, unique_repo, [receiver.url])
    outcome = _deliver(factory, loopback_services, delivery_id)

    assert (outcome.state, outcome.attempt, outcome.status_code) == ("delivered", 1, 200)
    with factory() as session:
        delivery = session.get(Delivery, delivery_id)
        assert (delivery.state, delivery.attempts, delivery.claimed_until) == ("delivered", 1, None)
        assert delivery.delivered_at is not None
        [attempt] = session.scalars(select(Attempt).where(Attempt.delivery_id == delivery_id))
        assert (attempt.number, attempt.status_code, attempt.response_excerpt) == (1, 200, "ok")
    assert _slot(factory, delivery_id).in_flight == 0
    # A duplicate message does nothing.
    again = _deliver(factory, loopback_services, delivery_id)
    assert (again.ran, again.state) == (False, "delivered")
    assert len(receiver.requests) == 1


def test_failures_are_counted_once_per_failed_delivery_and_reset_by_a_success(
        factory, loopback_services, receiver, unique_repo):
    receiver.statuses = [500]
    [first] = _publish(factory, unique_repo, [receiver.url])
    states = [_deliver(factory, loopback_services, first).state]
    for _ in range(2):
        with transaction(factory) as session:  # the scheduler's hand-back, without waiting
            session.execute(update(Delivery).where(Delivery.id == first)
                            .values(state="pending", next_attempt_at=None))
        states.append(_deliver(factory, loopback_services, first).state)
    assert states == ["retrying", "retrying", "failed"]
    with factory() as session:
        notification = session.scalars(select(Notification)
                                       .where(Notification.repository == unique_repo)).one()
        assert notification.number_of_failures == 1
        assert session.query(Attempt).filter_by(delivery_id=first).count() == 3
    assert _slot(factory, first).in_flight == 0

    receiver.statuses = [200]
    receiver.requests.clear()
    message = event_message(unique_repo, "repo_push", {"updated_tags": ["b"]}, {}, "ev-ok",
                            utcnow())
    with transaction(factory) as session:
        [ref] = fan_out(session, message, server_hostname="h", scheme="https")
    assert _deliver(factory, loopback_services, ref.id).state == "delivered"
    with factory() as session:
        assert session.get(Notification, notification.id).number_of_failures == 0


def test_a_full_endpoint_makes_deliveries_wait_without_an_attempt(factory, loopback_services,
                                                                  unique_repo):
    """Two attempts in flight (the bound); a third waits, taking a ticket a round away."""
    with _held() as (slow, threads):
        ids = [i for n in range(4) for i in _publish(factory, f"{unique_repo}-{n}", [slow.url])]
        _start(factory, loopback_services, ids[:2], threads)
        slow.wait_for(2)
        assert _slot(factory, ids[0]).in_flight == 2
        before = utcnow()
        third = _deliver(factory, loopback_services, ids[2])
        fourth = _deliver(factory, loopback_services, ids[3])
        assert (third.state, third.error, third.ran) == ("retrying", "endpoint busy", False)
        assert third.method == "webhook"  # from the refused claim itself: the metrics' label
        with factory() as session:
            waits = [session.get(Delivery, i) for i in ids[2:]]
        assert [w.attempts for w in waits] == [0, 0]
        first_wait = waits[0].next_attempt_at - before
        assert timedelta(seconds=0.9) < first_wait < timedelta(seconds=3)
        # The next refused one waits one slot's share of a round longer.
        assert waits[1].next_attempt_at - waits[0].next_attempt_at == pytest.approx(
            timedelta(seconds=0.5), abs=timedelta(seconds=0.05))
        assert fourth.state == "retrying"
    assert _slot(factory, ids[0]).in_flight == 0


def test_the_bound_is_exact_under_concurrent_claims(factory, loopback_services, unique_repo):
    with _held() as (slow, threads):
        ids = [i for n in range(8) for i in _publish(factory, f"{unique_repo}-{n}", [slow.url])]
        _start(factory, loopback_services, ids, threads)
        slow.wait_for(2)
        for thread in threads:
            thread.join(timeout=0.5)
        assert slow.max_in_flight == 2
        with factory() as session:
            states = sorted(session.scalars(select(Delivery.state).where(Delivery.id.in_(ids))))
        assert states == ["delivering"] * 2 + ["retrying"] * 6
        assert _slot(factory, ids[0]).in_flight == 2
    assert _slot(factory, ids[0]).in_flight == 0


def test_the_counter_follows_every_way_out_of_delivering(factory, loopback_services, receiver,
                                                         unique_repo):
    """Recovery of a lost worker, a skip and a deletion all give the slot back (trigger)."""
    ids = _publish(factory, unique_repo, [receiver.url, receiver.url, receiver.url])
    with transaction(factory) as session:
        session.execute(update(Delivery).where(Delivery.id.in_(ids))
                        .values(state="delivering", attempts=1,
                                claimed_until=utcnow() - timedelta(seconds=1)))
        session.execute(update(EndpointSlot).values(in_flight=3))
    with transaction(factory) as session:
        session.execute(delete(Delivery).where(Delivery.id == ids[0]))
    assert _slot(factory, ids[1]).in_flight == 2
    assert recover_lost(factory, utcnow(), POLICY, batch=10) == 2
    assert _slot(factory, ids[1]).in_flight == 0
    with factory() as session:
        assert {d.state for d in session.scalars(select(Delivery).where(
            Delivery.id.in_(ids[1:])))} == {"retrying"}


def test_an_attempt_after_its_claim_closed_is_not_recorded(factory, loopback_services, receiver,
                                                           unique_repo):
    receiver.hold = threading.Event()
    [delivery_id] = _publish(factory, unique_repo, [receiver.url])
    result = {}
    thread = threading.Thread(target=lambda: result.update(
        outcome=_deliver(factory, loopback_services, delivery_id)))
    thread.start()
    receiver.wait_for(1)
    # Meanwhile the scheduler decided the worker was lost and recorded that attempt.
    assert recover_lost(factory, utcnow() + timedelta(minutes=5), POLICY, batch=10) == 1
    receiver.hold.set()
    thread.join(timeout=30)
    assert result["outcome"].ran is False
    with factory() as session:
        kinds = list(session.scalars(select(Attempt.error_kind)
                                     .where(Attempt.delivery_id == delivery_id)))
    assert kinds == ["worker_lost"]


def test_an_endpoint_that_times_out_is_paced_down_to_one_slot_and_back(factory, settings,
                                                                       unique_repo):
    """Bound 2. A timeout halves it (1): a second attempt at once is refused while one runs,
    though the setting allows two, and refused ones wait a whole round apart (one slot). An
    answer in time brings it back to the setting's."""
    quick = Services(settings=settings, http=HttpClient(
        timeout_s=0.5, allowed=parse_networks(["127.0.0.0/8"]), user_agent="notifier",
        retry_after_max_s=60))
    with _held() as (slow, threads):
        ids = [i for n in range(5) for i in _publish(factory, f"{unique_repo}-{n}", [slow.url])]
        first = _deliver(factory, quick, ids[0])
        assert first.error.startswith("no complete answer within 0.5 s")
        assert _slot(factory, ids[0]).slow_limit == 1
        _start(factory, quick, ids[1:2], threads)
        slow.wait_for(2)
        refused = [_deliver(factory, quick, i) for i in ids[2:4]]
        assert [(r.ran, r.error) for r in refused] == [(False, "endpoint busy")] * 2
        with factory() as session:
            waits = [session.get(Delivery, i).next_attempt_at for i in ids[2:4]]
        assert waits[1] - waits[0] == pytest.approx(timedelta(seconds=1),
                                                    abs=timedelta(seconds=0.05))
        for thread in threads:
            thread.join(timeout=30)
        assert _slot(factory, ids[0]).slow_limit == 1  # at least one slot, always
        slow.hold.set()  # it answers in time from now on
        assert _deliver(factory, quick, ids[4]).state == "delivered"
        slot = _slot(factory, ids[0])
        assert (slot.slow_limit, slot.in_flight) == (None, 0)


def test_deliveries_to_a_paced_full_endpoint_wait_from_fan_out(factory, loopback_services,
                                                                unique_repo):
    """Paced (its attempts timed out) and every slot of its lowered bound taken: fan-out makes
    the new deliveries wait for the endpoint's tickets, a round apart, with no message and no
    task run. A full endpoint that is not paced, or a paced one with room, gets its message."""
    receivers = [Receiver() for _ in range(3)]
    try:
        repos = [f"{unique_repo}-{n}" for n in range(3)]
        firsts = [_publish(factory, repository, [receiver.url])[0]
                  for repository, receiver in zip(repos, receivers)]
        slots = [(1, 1), (None, POLICY.max_in_flight_per_endpoint), (2, 1)]  # (paced, in flight)
        for first, (slow_limit, in_flight) in zip(firsts, slots):
            with transaction(factory) as session:
                session.execute(update(EndpointSlot)
                                .where(EndpointSlot.endpoint == _slot(factory, first).endpoint)
                                .values(slow_limit=slow_limit, in_flight=in_flight))
        published = utcnow()
        assert _event(factory, repos[0]) == [] and _event(factory, repos[0]) == []
        assert [len(_event(factory, repository)) for repository in repos[1:]] == [1, 1]
        with factory() as session:
            parked = session.execute(
                select(Delivery.id, Delivery.state, Delivery.attempts, Delivery.next_attempt_at)
                .join(Notification, Notification.uuid == Delivery.notification_uuid)
                .where(Notification.repository == repos[0], Delivery.state != "pending")
                .order_by(Delivery.next_attempt_at)).all()
        assert [(p.state, p.attempts) for p in parked] == [("retrying", 0)] * 2
        assert timedelta(seconds=0.9) < parked[0].next_attempt_at - published < timedelta(seconds=3)
        assert parked[1].next_attempt_at - parked[0].next_attempt_at == pytest.approx(
            timedelta(seconds=1), abs=timedelta(seconds=0.05))  # one slot: a round apart
        with transaction(factory) as session:  # its attempt ended; its ticket came (the
            # scheduler's move, limited to this delivery: the database is shared)
            session.execute(update(EndpointSlot)
                            .where(EndpointSlot.endpoint == _slot(factory, firsts[0]).endpoint)
                            .values(in_flight=0))
            session.execute(update(Delivery).where(Delivery.id == parked[0].id)
                            .values(state="pending", next_attempt_at=None))
        assert _deliver(factory, loopback_services, parked[0].id).state == "delivered"
        assert len(receivers[0].requests) == 1
    finally:
        for receiver in receivers:
            receiver.close()


@pytest.fixture
def worker_factory(postgres_url):
    """Sessions as the workers have them: no pre-ping per checkout."""
    engine = make_engine(postgres_url, pre_ping=False)
    yield make_session_factory(engine)
    engine.dispose()


def test_a_restarted_database_costs_no_delivery(worker_factory, loopback_services, receiver,
                                                unique_repo):
    """No pre-ping per checkout: a dead pooled connection fails once, the pool reconnects and
    the claim runs again."""
    ids = _publish(worker_factory, unique_repo, [receiver.url, receiver.url])
    assert _deliver(worker_factory, loopback_services, ids[0]).state == "delivered"
    url = worker_factory.kw["bind"].url.set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    assert _deliver(worker_factory, loopback_services, ids[1]).state == "delivered"
