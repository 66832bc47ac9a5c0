"""Endpoint pacing: an endpoint whose attempts time out gets a smaller bound on attempts in
flight, so a receiver that hangs holds one worker slot, not the setting's bound of them, and
the receivers that answer keep the workers.

Multiplicative decrease, additive increase (as TCP paces a congested link): an attempt that timed
out halves the endpoint's bound (at least 1); an attempt that got an answer in time, whatever its
status, raises it by one, and at the setting's bound the endpoint is back to normal (NULL). Only
an attempt that changes something costs a statement: a timeout, or an answer from a paced
endpoint. A refused connection and the like change nothing (they held no slot for long).

Waiting for a full endpoint: each delivery that must wait takes the endpoint's next wait ticket,
a round (about a second) plus one slot's share of a round after the previous one, so a backlog is
tried as many at a time as the endpoint's bound, a round apart, without anything counting it. A
claim refused at a full endpoint takes one (``notifier.delivery``); fan-out takes them at once for
the deliveries of a paced endpoint that is full, so they cost no task run (``notifier.fanout``).
"""

from __future__ import annotations

import logging
from functools import lru_cache

from sqlalchemy import Float, Integer, String, any_, bindparam, case, func, literal, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from notifier.db import all_rows, dialect_name
from notifier.errors import TIMEOUT_KIND, DeliveryError
from notifier.models import EndpointSlot

log = logging.getLogger(__name__)

BUSY_ENDPOINT_ROUND_S = 1.0
_SLOTS = EndpointSlot.__table__  # Core: the ORM's bulk-update bookkeeping buys nothing here


def pace(db: Session | Connection, endpoint: str | None, slow_limit: int | None,
         error: DeliveryError | None, status_code: int | None, max_in_flight: int) -> None:
    """After an attempt at ``endpoint`` claimed under ``slow_limit`` (None: not paced)."""
    if endpoint is None:
        return
    if error is not None and error.kind == TIMEOUT_KIND:
        current = func.coalesce(EndpointSlot.slow_limit, max_in_flight)
        halved = db.scalar(
            update(EndpointSlot).where(EndpointSlot.endpoint == endpoint)
            .values(slow_limit=case((current < 2, 1), else_=current // 2))
            .returning(EndpointSlot.slow_limit))
        if halved is not None and halved != (slow_limit or max_in_flight):
            log.warning("endpoint %s timed out: at most %d attempt(s) in flight there until it "
                        "answers in time again", endpoint, halved)
    elif slow_limit is not None and (error is None or status_code is not None):
        raised = EndpointSlot.slow_limit + 1
        db.execute(update(EndpointSlot)
                   .where(EndpointSlot.endpoint == endpoint, EndpointSlot.slow_limit.is_not(None))
                   .values(slow_limit=case((raised >= max_in_flight, None), else_=raised)))


def take_tickets(db: Session | Connection, counts: dict[str, int], now_s: float,
                 max_in_flight: int, *, paced_and_full: bool = False) -> dict[str, list[float]]:
    """Take ``counts[endpoint]`` wait tickets at each endpoint, in one statement: the times
    (seconds since the epoch) its deliveries may be tried again, in order. ``paced_and_full``:
    only at endpoints that are paced and have every slot of their lowered bound taken (the others
    are left out of the answer)."""
    if not counts:
        return {}
    params = {"endpoints": list(counts), "earliest_s": now_s + BUSY_ENDPOINT_ROUND_S,
              "max_in_flight": max_in_flight}
    postgres = dialect_name(db) == "postgresql"
    if len(set(counts.values())) == 1:  # the usual case: one statement built once
        params["taken"] = next(iter(counts.values()))
        taken = all_rows(db, _tickets(paced_and_full, postgres, uniform=True), params)
    else:  # rare: a statement for these counts
        statement = _tickets(paced_and_full, postgres, uniform=False).values(
            busy_until_s=_next_ticket(case(counts, value=_SLOTS.c.endpoint)))
        taken = [dict(row._mapping) for row in db.execute(statement, params)]
    tickets = {}
    for row in taken:
        endpoint, last_s, slow_limit = row["endpoint"], row["busy_until_s"], row["slow_limit"]
        share = BUSY_ENDPOINT_ROUND_S / (slow_limit or max_in_flight)
        count = counts[endpoint]
        tickets[endpoint] = [last_s - share * (count - 1 - index) for index in range(count)]
    return tickets


def _next_ticket(taken):
    """The endpoint's last ticket after ``taken`` more: a round from now at the earliest, then
    one slot's share of a round each."""
    busy = _SLOTS.c.busy_until_s
    earliest = bindparam("earliest_s", type_=Float)
    share = literal(BUSY_ENDPOINT_ROUND_S, Float) / func.coalesce(
        _SLOTS.c.slow_limit, bindparam("max_in_flight", type_=Integer))
    return case((busy > earliest, busy), else_=earliest) + share * taken


@lru_cache(maxsize=8)
def _tickets(paced_and_full: bool, postgres: bool, *, uniform: bool):
    """The UPDATE of the endpoints' slot rows. On PostgreSQL the endpoints are one array
    parameter, so the statement's text stays the same (prepared once per connection)."""
    endpoints = (_SLOTS.c.endpoint == any_(bindparam("endpoints", type_=ARRAY(String)))
                 if postgres else _SLOTS.c.endpoint.in_(bindparam("endpoints",
                                                                      expanding=True)))
    statement = (update(_SLOTS).where(endpoints)
                 .returning(_SLOTS.c.endpoint, _SLOTS.c.busy_until_s,
                            _SLOTS.c.slow_limit))
    if paced_and_full:
        statement = statement.where(_SLOTS.c.slow_limit.is_not(None),
                                    _SLOTS.c.in_flight >= _SLOTS.c.slow_limit)
    if uniform:
        statement = statement.values(
            busy_until_s=_next_ticket(bindparam("taken", type_=Integer)))
    return statement
