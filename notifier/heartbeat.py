"""When a periodic job last ran, kept in the database so the whole fleet (the API, `notifier
status`, the alert rules) can see a scheduler that stopped."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from notifier.db import insert_ignore
from notifier.models import Heartbeat

SCHEDULER = "scheduler"


def beat(session: Session, name: str, now: datetime) -> None:
    """Record that ``name`` ran at ``now`` (one small UPDATE; an INSERT the first time)."""
    changed = session.execute(update(Heartbeat).where(Heartbeat.name == name)
                              .values(last_run_at=now)
                              .execution_options(synchronize_session=False)).rowcount
    if not changed:
        session.execute(insert_ignore(session, Heartbeat).values(name=name, last_run_at=now))


def last_run(session: Session, name: str) -> datetime | None:
    return session.scalar(select(Heartbeat.last_run_at).where(Heartbeat.name == name))
