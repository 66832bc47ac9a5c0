"""The claim of one delivery: pending → delivering, one slot more at its endpoint if the bound
allows, and what the attempt needs (notification and event), as a dict.

PostgreSQL does it in one statement: lock the pending row, take a slot, move the row only if it
got one, read the rest. Concurrent claims of one endpoint wait for its slot row, and PostgreSQL
re-checks ``in_flight < bound`` on the row they waited for, so the bound is exact. SQLite runs the
same steps as statements of one BEGIN IMMEDIATE transaction (writers take turns there).
A slot goes back by trigger (migration 0009) when the delivering row changes state.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Integer, bindparam, exists, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from notifier.db import dialect_name, first_row
from notifier.models import (Delivery, DeliveryState, EndpointSlot, Event, Notification,
                              still_in)

# What the attempt needs of its notification and event (the method is the delivery's own: a
# refused claim returns it too, for the metrics' label).
_READ = (Notification.config, Notification.enabled, Notification.title,
         Notification.event_config, Event.name, Event.repository, Event.payload,
         Event.performer, Event.recorded_at)
_CLAIMED = (Delivery.id, Delivery.attempts, Delivery.attempts_before_redelivery,
            Delivery.notification_uuid, Delivery.event_id, Delivery.is_test)


def _claim_update():
    return (update(Delivery)
            .values(state=DeliveryState.DELIVERING.value, attempts=Delivery.attempts + 1,
                    claimed_until=bindparam("until", type_=Delivery.claimed_until.type)))


def _take_slot(endpoint):
    """One slot more at ``endpoint`` while under its bound: the setting's, or the smaller one
    of an endpoint whose attempts timed out (``slow_limit``, see ``notifier.pacing``)."""
    return (update(EndpointSlot)
            .where(EndpointSlot.endpoint == endpoint,
                   EndpointSlot.in_flight < bindparam("max_in_flight", type_=Integer),
                   or_(EndpointSlot.slow_limit.is_(None),
                       EndpointSlot.in_flight < EndpointSlot.slow_limit))
            .values(in_flight=EndpointSlot.in_flight + 1)
            .returning(EndpointSlot.endpoint, EndpointSlot.slow_limit))


class PostgresClaim:
    """The claim as one statement (see the module)."""

    @staticmethod
    @lru_cache(maxsize=1)
    def statement():
        target = (select(Delivery.id, Delivery.endpoint, Delivery.method)
                  .where(Delivery.id == bindparam("delivery_id"),
                         still_in(DeliveryState.PENDING))
                  .with_for_update().cte("target"))
        slot = _take_slot(select(target.c.endpoint).scalar_subquery()).cte("slot")
        free = or_(target.c.endpoint.is_(None), exists(select(slot.c.endpoint)))
        claimed = (_claim_update()
                   .where(Delivery.id == select(target.c.id).where(free).scalar_subquery())
                   .returning(*_CLAIMED).cte("claimed"))
        return (select(target.c.endpoint, target.c.method,
                       *(claimed.c[c.key] for c in _CLAIMED[1:]), *_READ,
                       select(slot.c.slow_limit).scalar_subquery().label("slow_limit"))
                .select_from(target)
                .outerjoin(claimed, claimed.c.id == target.c.id)
                .outerjoin(Notification, Notification.uuid == claimed.c.notification_uuid)
                .outerjoin(Event, Event.id == claimed.c.event_id))

    def take(self, db: Connection, delivery_id: str, until: datetime,
             max_in_flight: int) -> dict[str, Any] | None:
        return first_row(db, self.statement(), {"delivery_id": delivery_id, "until": until,
                                                "max_in_flight": max_in_flight})


class SequentialClaim:
    """The claim as three statements in the caller's transaction (SQLite)."""

    def take(self, session: Session, delivery_id: str, until: datetime,
             max_in_flight: int) -> dict[str, Any] | None:
        claimed = session.execute(
            _claim_update().where(Delivery.id == delivery_id, still_in(DeliveryState.PENDING))
            .returning(Delivery.endpoint, Delivery.method, *_CLAIMED[1:]),
            {"until": until}).first()
        if claimed is None:
            return None
        taken = {**claimed._mapping, "slow_limit": None}
        if claimed.endpoint is not None:
            slot = session.execute(_take_slot(claimed.endpoint),
                                   {"max_in_flight": max_in_flight}).first()
            if slot is None:
                return {"endpoint": claimed.endpoint, "method": claimed.method,
                        "attempts": None}  # the caller rolls back
            taken["slow_limit"] = slot.slow_limit
        found = session.execute(
            select(*_READ).join_from(Notification, Event, Event.id == claimed.event_id)
            .where(Notification.uuid == claimed.notification_uuid)).one()
        return {**taken, **found._mapping}


_POSTGRES, _SEQUENTIAL = PostgresClaim(), SequentialClaim()


def claim_statements(db: Session | Connection) -> PostgresClaim | SequentialClaim:
    return _POSTGRES if dialect_name(db) == "postgresql" else _SEQUENTIAL
