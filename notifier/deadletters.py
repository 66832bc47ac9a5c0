"""The dead-letter store: broker messages that kept failing for a reason other than the
database being away (a bug, a payload that cannot be recorded, a message that kills its
worker), kept with the reason instead of being retried forever or dropped.

On-call lists them, replays them once the cause is fixed (through the normal fan-out, with the
same event id, so nothing is delivered twice) or drops them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from notifier.db import transaction
from notifier.errors import NotFound
from notifier.models import DeadLetter
from notifier.producer import Producer

REASON_MAX = 1000


def bury(session: Session, task: str, args: list[Any], *, reason: str, tries: int,
         now: datetime) -> int:
    """Store one message with why it failed; returns its id."""
    first = args[0] if args and isinstance(args[0], dict) else {}
    letter = DeadLetter(
        task=task,
        # ASCII-escaped text: a payload the ledger refused (a NUL, say) is still storable here.
        message=json.dumps(args, ensure_ascii=True, default=repr),
        event_id=_short(first.get("event_id"), 128),
        repository=_short(first.get("repository"), 255),
        event=_short(first.get("event"), 64),
        reason=reason[:REASON_MAX], tries=tries, dead_at=now,
    )
    session.add(letter)
    session.flush()
    return letter.id


def count_dead_letters(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(DeadLetter))


def list_dead_letters(session: Session, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` dead letters, as views."""
    rows = session.scalars(select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit))
    return [dead_letter_view(row) for row in rows]


def dead_letter_view(letter: DeadLetter) -> dict[str, Any]:
    return {"id": letter.id, "task": letter.task, "event_id": letter.event_id,
            "repository": letter.repository, "event": letter.event, "reason": letter.reason,
            "tries": letter.tries, "dead_at": letter.dead_at.isoformat(timespec="seconds"),
            "args": json.loads(letter.message)}


def get_dead_letter(session: Session, letter_id: int) -> DeadLetter:
    letter = session.get(DeadLetter, letter_id)
    if letter is None:
        raise NotFound(f"no dead letter with id {letter_id}; `notifier dead-letters list` "
                       "shows the ones there are")
    return letter


def dead_letter_ids(session: Session) -> list[int]:
    return list(session.scalars(select(DeadLetter.id).order_by(DeadLetter.id)))


def drop(session: Session, letter_id: int) -> None:
    """Forget one dead letter for good."""
    get_dead_letter(session, letter_id)
    session.execute(delete(DeadLetter).where(DeadLetter.id == letter_id))


def _short(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def replay(factory: sessionmaker[Session], producer: Producer, letter_id: int) -> None:
    """Send one dead letter through its task again; it leaves the store once the broker has
    taken it (a crash in between replays it twice, which the event id makes harmless)."""
    with factory() as session:
        letter = get_dead_letter(session, letter_id)
        task, args = letter.task, json.loads(letter.message)
    producer.resend(task, args)
    with transaction(factory) as session:
        session.execute(delete(DeadLetter).where(DeadLetter.id == letter_id))
