"""Retention benchmark: delivery throughput while a prune deletes a million ledger rows.

    python -m bench.retention --rows 1000000 --events 1000

Other options are the pipeline benchmark's (``--delivery-pool``, ``--delivery-concurrency``,
``--redis-db``, default 14 here, ``--timeout`` ...).

Seeds ROWS finished deliveries older than the retention period (one attempt each, one event
per 100 deliveries) into a fresh PostgreSQL database, starts real workers, then measures
deliveries/s twice: with nothing else running, and while ``prune_ledger`` runs in this process.
A benchmark, not a test: it prints numbers and asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from sqlalchemy import text

from bench.pipeline import Bench, BenchError, run_in_workdir
from bench.pipeline import parse_args as pipeline_arguments
from notifier.retention import cutoff_for, prune_ledger

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


def run(args: argparse.Namespace, workdir: Path, stack: ExitStack) -> str:
    bench = Bench(args, workdir, stack)
    bench.start()
    seed_s = seed(bench.engine, args.rows)
    bench.warm_up()
    baseline = bench.notifier_run("baseline", args.events)
    pruned, prune_times = [], []

    def prune() -> None:
        began = time.time()
        pruned.append(prune_ledger(bench.factory, cutoff_for(30), batch=args.batch,
                                   budget_s=3600))
        prune_times.extend([began, time.time()])

    worker = threading.Thread(target=prune, daemon=True)
    worker.start()
    time.sleep(1)  # the prune is under way
    during = bench.notifier_run("during the prune", args.events)
    worker.join(timeout=3600)
    if not (baseline.complete and during.complete):
        raise BenchError("not every delivery arrived")
    if not pruned:
        raise BenchError("the prune did not finish within an hour")
    prune_s = prune_times[1] - prune_times[0]
    last = max(a.received_at for a in during.arrivals)
    overlap = "inside the prune" if last <= prune_times[1] else \
        f"the prune ended {last - prune_times[1]:.1f} s before the last delivery"
    result = pruned[0]
    return "\n".join([
        f"notifier retention benchmark: PostgreSQL + Redis, {os.cpu_count()} CPUs",
        f"  seeded      {args.rows:,} old delivered deliveries + {args.rows:,} attempts "
        f"+ {args.rows // 100 + 1:,} events in {seed_s:.1f} s",
        f"  workers     delivery {args.delivery_pool} x{args.delivery_concurrency}",
        f"  baseline    {args.events} deliveries at {baseline.rate:,.0f} deliveries/s (no prune)",
        f"  during      {args.events} deliveries at {during.rate:,.0f} deliveries/s ({overlap})",
        f"  prune       {result.deliveries:,} deliveries, {result.attempts:,} attempts, "
        f"{result.events:,} events in {prune_s:.1f} s = "
        f"{(result.deliveries + result.attempts + result.events) / prune_s:,.0f} rows/s, "
        f"batches of {args.batch}",
    ])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Its own options; the rest are the pipeline benchmark's (workers, servers, timeouts)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000,
                        help="old deliveries to seed (and prune)")
    parser.add_argument("--batch", type=int, default=1000, help="rows per prune transaction")
    own, rest = parser.parse_known_args(argv)
    args = pipeline_arguments(["--events", "1000", "--notifications", "1", "--receivers", "1",
                               "--redis-db", "14", *rest])
    args.rows, args.batch = own.rows, own.batch
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body(workdir: Path, stack: ExitStack) -> bool:
        print(run(args, workdir, stack), flush=True)
        return True
    return run_in_workdir(body)


if __name__ == "__main__":
    sys.exit(main())
