"""Fill a PostgreSQL ledger with old history: delivered deliveries with one attempt each, and
retries waiting far in the future, on a repository of their own (nothing of it is sent).

Used by ``bench/pipeline.py --ledger-rows`` and by the EXPLAIN test.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

FILLER_REPOSITORY = "bench/filler"
FILLER_NOTIFICATIONS = 100
DELIVERIES_PER_EVENT = 10

_STATEMENTS = [
    """INSERT INTO notifications (uuid, repository, event, method, title, config, event_config,
                                  number_of_failures, enabled, created_at)
       SELECT md5('filler-notification-' || g)::uuid::text, :repository, 'repo_push', 'webhook',
              'filler ' || g, '{"url": "http://127.0.0.1:9/filler"}', '{}', 0, true, now()
       FROM generate_series(1, :notifications) g""",
    """INSERT INTO events (id, repository, name, payload, performer, published_at, recorded_at)
       SELECT 'filler-' || g, :repository, 'repo_push', '{}', '{}',
              now() - make_interval(secs => :events - g), now() - make_interval(secs => :events - g)
       FROM generate_series(1, :events) g""",
    # Delivered history, oldest first, then the waiting retries (one attempt made each).
    """INSERT INTO deliveries (id, event_id, notification_uuid, method, endpoint, state, attempts,
                               attempts_before_redelivery, next_attempt_at, last_status_code,
                               is_test, created_at, delivered_at)
       SELECT md5('filler-delivery-' || g)::uuid::text,
              'filler-' || (1 + (g - 1) / :per_event),
              md5('filler-notification-' || (1 + g % :notifications))::uuid::text,
              'webhook', '127.0.0.1:9',
              CASE WHEN g <= :rows THEN 'delivered' ELSE 'retrying' END, 1, 0,
              CASE WHEN g <= :rows THEN NULL
                   ELSE now() + interval '1 day' + make_interval(secs => g - :rows) END,
              CASE WHEN g <= :rows THEN 200 ELSE 503 END, false,
              now() - make_interval(secs => (:total - g) / 10.0),
              CASE WHEN g <= :rows THEN now() - make_interval(secs => (:total - g) / 10.0) END
       FROM generate_series(1, :total) g""",
    """INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code,
                             response_excerpt)
       SELECT id, 1, created_at, 3, last_status_code, 'ok' FROM deliveries
       WHERE event_id LIKE 'filler-%'""",
]


def fill_ledger(engine: Engine, rows: int, waiting_retries: int) -> None:
    """Add ``rows`` delivered deliveries and ``waiting_retries`` retrying ones (PostgreSQL)."""
    total = rows + waiting_retries
    params = {"repository": FILLER_REPOSITORY, "notifications": FILLER_NOTIFICATIONS,
              "events": -(-total // DELIVERIES_PER_EVENT), "per_event": DELIVERIES_PER_EVENT,
              "rows": rows, "total": total}
    with engine.begin() as connection:
        for statement in _STATEMENTS:
            connection.execute(text(statement), params)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
