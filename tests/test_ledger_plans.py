"""With a large ledger on PostgreSQL, the hot path's and the pages' statements use indexes: the
statements a delivery, the scheduler and the history pages really run are captured and read
back with EXPLAIN, and none scans deliveries or attempts sequentially. And whatever the
planner's statistics say, no statement that finds a delivery by its key walks every delivery in
a state instead (a backlog of pending deliveries would make each claim cost the backlog)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import event

from bench.ledger import fill_ledger
from notifier.db import make_engine, make_session_factory, transaction
from notifier.delivery import Policy, run_delivery
from notifier.fanout import event_message, fan_out
from notifier.ledger import abandon_delivery, list_attempts, newest_rows
from notifier.migrate import upgrade
from notifier.models import utcnow
from notifier.netpolicy import parse_networks
from notifier.notifications import create_notification
from notifier.scheduler import claim_due, recover_lost
from tests.conftest import create_database, drop_database

DELIVERED = 200_000
WAITING = 20_000
BACKLOG_EVENTS = 300  # x 2 notifications: pending deliveries
POLICY = Policy(retry_schedule_s=(0, 0.1, 0.2), max_failures=3, claim_timeout_s=30)
SCANNED = {"deliveries", "attempts"}


@pytest.fixture(scope="module")
def big_ledger():
    url = create_database("notifier_plans")
    engine = make_engine(url)
    upgrade(engine)
    fill_ledger(engine, DELIVERED, WAITING)
    yield make_session_factory(engine)
    engine.dispose()
    drop_database(url)


def _nodes(plan: dict):
    """``plan`` and every node under it."""
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _sequential_scans(plan: dict) -> list[str]:
    return [node["Relation Name"] for node in _nodes(plan)
            if node.get("Node Type") == "Seq Scan" and node.get("Relation Name") in SCANNED]


def _state_walks(plan: dict) -> list[str]:
    """The scans of deliveries by a state index with no condition but the state: each walks
    every delivery in that state."""
    return [f"{node['Index Name']}: {node['Index Cond']}" for node in _nodes(plan)
            if node.get("Relation Name") == "deliveries"
            and node.get("Index Name", "").startswith("ix_deliveries_state_")
            and " AND " not in node.get("Index Cond", " AND ")]


def _plans(factory, statements):
    """EXPLAIN of each captured statement, with its parameters."""
    with factory.kw["bind"].raw_connection() as raw:
        cursor = raw.cursor()
        for statement, parameters in statements:
            cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
            [[plans]] = cursor.fetchall()
            yield statement, (json.loads(plans) if isinstance(plans, str) else plans)[0]["Plan"]
        raw.rollback()


def _captured(factory):
    statements = []

    def keep(_conn, _cursor, statement, parameters, _context, _many):
        if any(table in statement for table in SCANNED):
            statements.append((statement, parameters))
    event.listen(factory.kw["bind"], "before_cursor_execute", keep)
    return statements


def test_no_sequential_scan_of_the_ledger(big_ledger, loopback_services, receiver, unique_repo):
    factory = big_ledger
    with transaction(factory) as session:
        notification = create_notification(session, unique_repo, "repo_push", "webhook",
                                           {"url": receiver.url},
                                           allowed_networks=parse_networks(["127.0.0.0/8"]))
    message = event_message(unique_repo, "repo_push", {"updated_tags": ["a"]}, {}, "plans-1",
                            utcnow())
    with transaction(factory) as session:
        [ref] = fan_out(session, message, server_hostname="h", scheme="https")

    statements = _captured(factory)
    assert run_delivery(factory, ref.id, policy=POLICY, services=loopback_services).ran
    recover_lost(factory, utcnow(), POLICY, batch=500)
    with transaction(factory) as session:
        claim_due(session, utcnow(), batch=500, stale_after_s=3600)
    with factory() as session:
        [row] = newest_rows(session, notification_uuid=notification.uuid)
        newest_rows(session, notification_uuid=notification.uuid,
                    before=(row[0].created_at, row[0].id), state="delivered")
        page = newest_rows(session, limit=20)
        newest_rows(session, before=(page[-1][0].created_at, page[-1][0].id), limit=20)
        list_attempts(session, ref.id)
    assert len(statements) >= 8
    captured = [statement for statement, _ in statements]
    assert any("FOR UPDATE" in s and "endpoint_slots" in s for s in captured)  # the claim
    assert any("INSERT INTO attempts" in s for s in captured)  # the record

    for statement, plan in _plans(factory, statements):
        assert _sequential_scans(plan) == [], statement


@pytest.fixture
def unanalyzed_backlog(receiver):
    """A new ledger PostgreSQL has no statistics of (never analyzed, autovacuum off), holding
    a backlog of pending deliveries: where the planner knows nothing, a state index and the
    key's cost the same to it."""
    url = create_database("notifier_backlog")
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as connection:
        for table in ("events", "deliveries", "attempts", "endpoint_slots", "notifications"):
            connection.exec_driver_sql(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        for n in range(2):
            create_notification(session, "backlog/repo", "repo_push", "webhook",
                                {"url": f"{receiver.url}?n={n}"},
                                allowed_networks=parse_networks(["127.0.0.0/8"]))
    for n in range(BACKLOG_EVENTS):
        with transaction(factory) as session:
            fan_out(session, event_message("backlog/repo", "repo_push", {"updated_tags": ["a"]},
                                           {}, f"backlog-{n}", utcnow()),
                    server_hostname="h", scheme="https")
    yield factory
    engine.dispose()
    drop_database(url)


def test_a_pending_backlog_is_not_walked_by_key_lookups(unanalyzed_backlog, loopback_services):
    """Fan-out, the claim, the record and abandoning find deliveries by their key (a state
    index walk here costs every delivery the backlog: measured, PostgreSQL's CPU per delivery
    grew from 1.9 to 3.3 ms between bursts of 1,200 and 8,000)."""
    factory = unanalyzed_backlog
    statements = _captured(factory)
    message = event_message("backlog/repo", "repo_push", {"updated_tags": ["b"]}, {}, "one-more",
                            utcnow())
    with transaction(factory) as session:
        refs = fan_out(session, message, server_hostname="h", scheme="https")
    assert run_delivery(factory, refs[0].id, policy=POLICY, services=loopback_services).ran
    with transaction(factory) as session:
        assert abandon_delivery(session, refs[1].id, "test")
    captured = [statement for statement, _ in statements]
    assert any("FOR UPDATE" in s and "endpoint_slots" in s for s in captured)  # the claim
    assert any("INSERT INTO attempts" in s for s in captured)  # the record
    assert any("INSERT INTO deliveries" in s for s in captured)  # fan-out
    walks = {statement: _state_walks(plan) + _sequential_scans(plan)
             for statement, plan in _plans(factory, statements)}
    assert {statement: found for statement, found in walks.items() if found} == {}
