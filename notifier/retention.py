"""Ledger retention: finished deliveries older than the retention period go, with their
attempts, and so do events left with no delivery.

Deletes run in small batches, each its own short transaction, so a prune never holds a lock
that stalls deliveries. Only finished deliveries (delivered, failed, skipped) are deleted, and
the state is checked again by the DELETE itself: a delivery sent again meanwhile stays.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session, sessionmaker

from notifier.db import transaction
from notifier.models import FINAL_STATES, Attempt, Delivery, Event, utcnow

FINISHED = tuple(sorted(state.value for state in FINAL_STATES))


@dataclass
class Pruned:
    deliveries: int = 0
    attempts: int = 0
    events: int = 0
    complete: bool = True  # False when the time budget ran out first

    def describe(self) -> str:
        text = (f"pruned {self.deliveries} deliveries, {self.attempts} attempts and "
                f"{self.events} events")
        return text if self.complete else text + " (time budget spent; the next run goes on)"


def cutoff_for(retention_days: float, now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(days=retention_days)


def prune_deliveries_batch(session: Session, cutoff: datetime,
                           batch: int) -> tuple[int, int, int]:
    """Delete up to ``batch`` finished deliveries created before ``cutoff`` and their attempts;
    returns (deliveries found, deliveries deleted, attempts deleted)."""
    # Locked until commit (PostgreSQL; SQLite's write lock covers it), so a redelivery of one
    # of them waits and then finds it gone; rows another transaction holds are left for later.
    ids = list(session.scalars(
        select(Delivery.id).where(Delivery.state.in_(FINISHED), Delivery.created_at < cutoff)
        .limit(batch).with_for_update(skip_locked=True)))
    if not ids:
        return 0, 0, 0
    attempts = session.execute(delete(Attempt).where(Attempt.delivery_id.in_(ids))
                               .execution_options(synchronize_session=False)).rowcount
    deliveries = session.execute(delete(Delivery).where(Delivery.id.in_(ids))
                                 .execution_options(synchronize_session=False)).rowcount
    return len(ids), deliveries, attempts


def prune_events_batch(session: Session, cutoff: datetime, batch: int, pruned: Pruned) -> int:
    """Delete up to ``batch`` events recorded before ``cutoff`` that no delivery refers to;
    returns how many it found (adding what it deleted to ``pruned``)."""
    orphans = (select(Event.id)
               .where(Event.recorded_at < cutoff,
                      ~exists().where(Delivery.event_id == Event.id))
               .limit(batch))
    ids = list(session.scalars(orphans))
    if ids:
        pruned.events += session.execute(delete(Event).where(
            Event.id.in_(ids), ~exists().where(Delivery.event_id == Event.id))
            .execution_options(synchronize_session=False)).rowcount
    return len(ids)


def prune_ledger(factory: sessionmaker[Session], cutoff: datetime, *, batch: int,
                 budget_s: float = 300.0, pause_s: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> Pruned:
    """Prune everything finished before ``cutoff``, batch by batch, for at most ``budget_s``."""
    pruned = Pruned()
    deadline = clock() + budget_s
    for step in (prune_deliveries_step, prune_events_batch):
        while True:
            if clock() > deadline:
                pruned.complete = False
                return pruned
            with transaction(factory) as session:
                found = step(session, cutoff, batch, pruned)
            if found < batch:
                break
            if pause_s:
                time.sleep(pause_s)  # let waiting writers (SQLite has one lock) go first
    return pruned


def prune_deliveries_step(session: Session, cutoff: datetime, batch: int, pruned: Pruned) -> int:
    found, deliveries, attempts = prune_deliveries_batch(session, cutoff, batch)
    pruned.deliveries += deliveries
    pruned.attempts += attempts
    return found
