"""Retention benchmark: delivery throughput while a prune deletes a million ledger rows.

    python bench/retention.py --rows 1000000 --events 1000

Seeds ROWS finished deliveries older than the retention period (one attempt each, one event
per 100 deliveries) into a fresh PostgreSQL database, starts real workers, then measures
deliveries/s twice: with nothing else running, and while ``prune_ledger`` runs in this process.
A benchmark, not a test: it prints numbers and asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from sqlalchemy import text

from bench.pipeline import (HOOK_PATH, BenchError, Receiver, _exit_on_sigterm, create_notifications,
                            log_tails, notifier_environment, publish_events, redis_backend,
                            start_workers, wait_until_ready)
from config import load_settings
from notifier.db import make_engine, make_session_factory
from notifier.producer import Producer, client_app
from notifier.retention import cutoff_for, prune_ledger
from notifier.supervisor import ProcessGroup

SEED = """
INSERT INTO events (id, repository, name, payload, performer, published_at, recorded_at)
SELECT 'old-' || e, 'bench/old', 'repo_push', '{}', '{}', now() - interval '40 days',
       now() - interval '40 days'
FROM generate_series(1, :events) AS e;
INSERT INTO deliveries (id, event_id, notification_uuid, method, state, attempts,
                        attempts_before_redelivery, is_test, created_at, delivered_at)
SELECT 'old-' || d, 'old-' || (1 + d / 100), :notification, 'webhook', 'delivered', 1, 0, false,
       now() - interval '40 days', now() - interval '40 days'
FROM generate_series(0, :rows - 1) AS d;
INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code)
SELECT 'old-' || d, 1, now() - interval '40 days', 5, 200 FROM generate_series(0, :rows - 1) AS d;
"""


def seed(engine, rows: int) -> float:
    """Insert ``rows`` old delivered deliveries with their attempts; returns seconds taken."""
    started = time.monotonic()
    with engine.begin() as connection:
        notification = connection.execute(text("SELECT uuid FROM notifications LIMIT 1")).scalar()
        for statement in filter(str.strip, SEED.split(";")):
            connection.execute(text(statement), {"rows": rows, "events": rows // 100 + 1,
                                                 "notification": notification})
        connection.execute(text("ANALYZE"))
    return time.monotonic() - started


def measure(receiver: Receiver, producer: Producer, events: int, group: ProcessGroup,
            timeout_s: float) -> tuple[float, float]:
    """Publish ``events`` (one delivery each) and wait for them; returns (start, end) times."""
    expected = len(receiver.arrivals) + events
    started = time.time()
    publish_events(producer, events, 0)
    receiver.wait_for(expected, timeout_s, group.exited)
    if len(receiver.arrivals) < expected:
        raise BenchError(f"{expected - len(receiver.arrivals)} deliveries did not arrive")
    return started, max(a.received_at for a in receiver.arrivals.values())


def run(args: argparse.Namespace, workdir: Path, stack: ExitStack) -> str:
    database_url, broker_url = stack.enter_context(redis_backend(args, workdir))
    os.environ.update(notifier_environment(database_url, broker_url))
    settings = load_settings()
    receiver = Receiver()
    stack.callback(receiver.close)
    engine = make_engine(database_url)
    stack.callback(engine.dispose)
    create_notifications(engine, settings, 1, receiver.url(HOOK_PATH))
    seed_s = seed(engine, args.rows)
    app = client_app(settings)
    stack.callback(app.close)
    group = ProcessGroup(env=dict(os.environ), log_dir=workdir / "logs")
    stack.callback(group.stop)
    start_workers(group, settings, args, workdir)
    wait_until_ready(app, group, args.start_timeout)
    producer = Producer(app, settings)
    measure(receiver, producer, 50, group, args.timeout)  # warm up
    start, end = measure(receiver, producer, args.events, group, args.timeout)
    baseline = args.events / (end - start)

    pruned, prune_times = [], []

    def prune() -> None:
        began = time.time()
        pruned.append(prune_ledger(make_session_factory(engine), cutoff_for(30),
                                   batch=args.batch, budget_s=3600))
        prune_times.extend([began, time.time()])

    worker = threading.Thread(target=prune, daemon=True)
    worker.start()
    time.sleep(1)  # the prune is under way
    start, end = measure(receiver, producer, args.events, group, args.timeout)
    during = args.events / (end - start)
    worker.join(timeout=3600)
    if not pruned:
        raise BenchError("the prune did not finish within an hour")
    prune_s = prune_times[1] - prune_times[0]
    overlap = "inside the prune" if end <= prune_times[1] else \
        f"the prune ended {end - prune_times[1]:.1f} s before the last delivery"
    result = pruned[0]
    return "\n".join([
        f"notifier retention benchmark: PostgreSQL + Redis, {os.cpu_count()} CPUs",
        f"  seeded      {args.rows:,} old delivered deliveries + {args.rows:,} attempts "
        f"+ {args.rows // 100 + 1:,} events in {seed_s:.1f} s",
        f"  workers     delivery {args.delivery_pool} x{args.delivery_concurrency}",
        f"  baseline    {args.events} deliveries at {baseline:,.0f} deliveries/s (no prune)",
        f"  during      {args.events} deliveries at {during:,.0f} deliveries/s ({overlap})",
        f"  prune       {result.deliveries:,} deliveries, {result.attempts:,} attempts, "
        f"{result.events:,} events in {prune_s:.1f} s = "
        f"{(result.deliveries + result.attempts + result.events) / prune_s:,.0f} rows/s, "
        f"batches of {args.batch}",
    ])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--rows", type=int, default=1_000_000, help="old deliveries to seed (and prune)")
    add("--events", type=int, default=1000, help="events (one delivery each) per measurement")
    add("--batch", type=int, default=1000, help="rows per prune transaction")
    add("--fanout-pool", default="threads")
    add("--fanout-concurrency", type=int, default=4)
    add("--delivery-pool", default="threads")
    add("--delivery-concurrency", type=int, default=16)
    add("--timeout", type=float, default=600.0, help="seconds to wait for deliveries")
    add("--start-timeout", type=float, default=60.0)
    add("--redis-url", default="redis://127.0.0.1:6379")
    add("--redis-db", type=int, default=14, help="flushed before and after")
    add("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="notifier-bench-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        try:
            print(run(args, workdir, stack), flush=True)
        except BenchError as exc:
            print(f"error: {exc}\n{log_tails(workdir / 'logs')}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
