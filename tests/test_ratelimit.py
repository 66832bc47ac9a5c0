"""Rate limits in the database (PostgreSQL and SQLite): fixed windows per limit and key."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from notifier.db import transaction
from notifier.errors import RateLimited
from notifier.models import utcnow
from notifier.ratelimit import Limit, take

LIMIT = Limit("test calls", 2, window_s=60)


def use(factory, key, now):
    with transaction(factory) as session:
        take(session, LIMIT, key, now=now)


def test_a_key_gets_its_count_per_window_then_a_retry_after(factory):
    key, now = str(uuid.uuid4()), utcnow()
    use(factory, key, now)
    use(factory, key, now + timedelta(seconds=1))

    with pytest.raises(RateLimited) as caught:
        use(factory, key, now + timedelta(seconds=20))

    assert caught.value.retry_after_s == 40
    assert str(caught.value) == "Too many test calls: at most 2 per 60 s; try again in 40 s"
    use(factory, str(uuid.uuid4()), now)  # another key has its own window
    use(factory, key, now + timedelta(seconds=61))  # a new window


def test_a_refused_use_is_not_counted(factory):
    key, now = str(uuid.uuid4()), utcnow()
    for _ in range(2):
        use(factory, key, now)
    for _ in range(3):
        with pytest.raises(RateLimited):
            use(factory, key, now)
    use(factory, key, now + timedelta(seconds=60))
    use(factory, key, now + timedelta(seconds=60))
