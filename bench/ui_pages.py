"""Web UI page times: a repository with 200 notifications, one of them with 10,000 deliveries.

    python bench/ui_pages.py --backend postgres
    python bench/ui_pages.py --backend sqlite --notifications 200 --deliveries 10000

Seeds the database directly, then requests each page through the app in-process (no network)
as a signed-in repository admin and prints, per page, the median and slowest time of --runs
requests and how many SQL statements one request ran. A benchmark, not a test: it asserts
nothing. The database it creates (PostgreSQL ``notifier_bench_ui_<random>`` or a temp SQLite
file) is removed at the end.
"""

from __future__ import annotations

import argparse
import re
import secrets
import statistics
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Iterator

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import event, insert, text

from config import load_settings
from notifier.api import create_app
from notifier.api.tokens import create_token
from notifier.db import make_engine, make_session_factory, transaction
from notifier.directory import save_organization, save_user
from notifier.migrate import upgrade
from notifier.models import Attempt, Delivery, Event, utcnow
from notifier.netpolicy import parse_networks
from notifier.notifications import create_notification

REPOSITORY = "bench/app"


@contextmanager
def database(backend: str, server: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'bench.db'}"
        return
    name = f"notifier_bench_ui_{secrets.token_hex(4)}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed(factory, notifications: int, deliveries: int) -> tuple[str, str, str]:
    """The admin's token, the busy notification's uuid and one of its delivery ids."""
    with transaction(factory) as session:
        save_user(session, "admin")
        save_organization(session, "bench", admins=["admin"])
        token = create_token(session, user="admin")
        made = [create_notification(session, REPOSITORY, "repo_push", "webhook",
                                    {"url": f"http://127.0.0.1:9/hook{i}"}, title=f"hook {i}",
                                    allowed_networks=parse_networks(["127.0.0.0/8"]))
                for i in range(notifications)]
    busy = made[0].uuid
    start = utcnow() - timedelta(days=30)
    events, rows, attempts = [], [], []
    for i in range(deliveries):
        when = start + timedelta(seconds=i * 60)
        event_id, delivery_id = str(uuid.uuid4()), str(uuid.uuid4())
        events.append({"id": event_id, "repository": REPOSITORY, "name": "repo_push",
                       "payload": {"updated_tags": [f"v{i}"], "repository": REPOSITORY},
                       "performer": {}, "published_at": when, "recorded_at": when})
        state = "failed" if i % 10 == 0 else "delivered"
        rows.append({"id": delivery_id, "event_id": event_id, "notification_uuid": busy,
                     "method": "webhook", "state": state, "attempts": 3 if state == "failed" else 1,
                     "last_status_code": 500 if state == "failed" else 200,
                     "last_error": "HTTP 500" if state == "failed" else None,
                     "is_test": False, "created_at": when,
                     "delivered_at": when if state == "delivered" else None})
        attempts += [{"delivery_id": delivery_id, "number": n, "started_at": when,
                      "duration_ms": 12, "status_code": rows[-1]["last_status_code"],
                      "error_kind": None, "error": None, "response_excerpt": "ok"}
                     for n in range(1, rows[-1]["attempts"] + 1)]
    for other in made[1:]:  # a little history for every other notification
        when = start
        event_id = str(uuid.uuid4())
        events.append({"id": event_id, "repository": REPOSITORY, "name": "repo_push",
                       "payload": {}, "performer": {}, "published_at": when, "recorded_at": when})
        rows.append({"id": str(uuid.uuid4()), "event_id": event_id, "notification_uuid": other.uuid,
                     "method": "webhook", "state": "delivered", "attempts": 1,
                     "last_status_code": 200, "last_error": None, "is_test": False,
                     "created_at": when, "delivered_at": when})
    with transaction(factory) as session:
        for table, values in ((Event, events), (Delivery, rows), (Attempt, attempts)):
            for chunk in range(0, len(values), 5000):
                session.execute(insert(table), values[chunk:chunk + 5000])
    with factory() as session:  # what autovacuum does soon after a bulk load
        session.execute(text("ANALYZE"))
        session.commit()
    return token, busy, rows[deliveries // 2]["id"]


def measure(client: TestClient, engine, path: str, runs: int) -> tuple[float, float, int, int]:
    statements = []
    listener = lambda *args: statements.append(1)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        client.get(path)  # warm
        statements.clear()
        times = []
        status = 0
        for _ in range(runs):
            began = time.perf_counter()
            status = client.get(path).status_code
            times.append((time.perf_counter() - began) * 1000)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return statistics.median(times), max(times), len(statements) // runs, status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--notifications", type=int, default=200)
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with database(args.backend, args.postgres_url) as url:
        engine = make_engine(url)
        upgrade(engine)
        began = time.perf_counter()
        token, busy, middle = seed(make_session_factory(engine), args.notifications,
                                   args.deliveries)
        print(f"seeded {args.notifications} notifications and {args.deliveries} deliveries "
              f"in {time.perf_counter() - began:.1f} s ({args.backend})")
        settings = load_settings(database_url=url, broker_url="memory://")
        app = create_app(settings)
        client = TestClient(app)
        form = client.get("/signin")
        client.post("/signin", data={"token": token, "csrf_token": re.search(
            r'name="csrf_token" value="([^"]+)"', form.text).group(1)})
        base = f"/repository/{REPOSITORY}/notification/{busy}"
        history = client.get(base + "/history").text
        older = re.search(r'href="([^"]+cursor=[^"]+)"', history)
        pages = {f"settings ({args.notifications} rows)": f"/repository/{REPOSITORY}?tab=settings",
                 "settings, disabled filter": f"/repository/{REPOSITORY}?tab=settings&state=disabled",
                 "create form": f"/repository/{REPOSITORY}/notification/new",
                 "edit form": base + "/edit",
                 "history, newest page": base + "/history",
                 # (none when the deliveries fit on one page)
                 **({"history, second page": older.group(1).replace("&amp;", "&")} if older
                    else {}),
                 "history, failed only": base + "/history?state=failed",
                 "one delivery": f"{base}/deliveries/{middle}",
                 "row (Test polling)": base + "/row",
                 "in-app inbox": "/notifications"}
        print(f"{'page':28} {'median ms':>10} {'max ms':>8} {'queries':>8} status")
        for name, path in pages.items():
            median, slowest, queries, status = measure(client, app.state.engine, path, args.runs)
            print(f"{name:28} {median:10.1f} {slowest:8.1f} {queries:8d} {status}")
        app.state.engine.dispose()
        engine.dispose()


if __name__ == "__main__":
    main()
