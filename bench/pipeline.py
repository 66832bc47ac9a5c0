"""Pipeline benchmark: publish → fan-out → delivery → a fast loopback receiver, real workers.

    python bench/pipeline.py --events 500 --notifications 4 --backend redis

Prints the publish rate, the end-to-end delivery rate, publish-to-receipt latency and, as a
ceiling, plain ``requests`` POSTs to the same receiver. A benchmark, not a test: it asserts
nothing. Everything it creates (database, Redis database, processes, temp folder) is removed
at the end, also on Ctrl-C or error.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterator

import psycopg
import redis
import requests
from sqlalchemy import func, select
from sqlalchemy.engine import Engine, make_url

from config import Settings, load_settings
from notifier.db import make_engine, make_session_factory, transaction
from notifier.migrate import upgrade
from notifier.models import Delivery
from notifier.netpolicy import parse_networks
from notifier.notifications import create_notification
from notifier.producer import Producer, client_app
from notifier.supervisor import ProcessGroup, beat_command, worker_command

REPOSITORY = "bench/pipeline"
EVENT = "repo_push"
HOOK_PATH = "/hook"
CEILING_PATH = "/ceiling"
LOG_TAIL_LINES = 20


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


@dataclass(frozen=True)
class Arrival:
    """One webhook delivery as the receiver saw it (wall-clock seconds)."""

    published_at: float
    received_at: float


class Receiver:
    """A loopback HTTP server that answers 200 at once and records webhook arrivals."""

    def __init__(self):
        self.arrivals: dict[str, Arrival] = {}
        self.duplicates = 0
        self.sample: tuple[dict[str, str], bytes] | None = None
        self._arrived = threading.Condition()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers offer

            def do_POST(self):
                received_at = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if self.path == HOOK_PATH:
                    receiver._record({k.lower(): v for k, v in self.headers.items()}, body,
                                     received_at)

            def log_message(self, *args):
                pass

        return Handler

    def _record(self, headers: dict[str, str], body: bytes, received_at: float) -> None:
        """Note one webhook; ``headers`` have lower-case names."""
        published_at = json.loads(body)["bench_published_at"]
        delivery_id = headers["webhook-id"]
        with self._arrived:
            if delivery_id in self.arrivals:
                self.duplicates += 1
            else:
                self.arrivals[delivery_id] = Arrival(published_at, received_at)
            self.sample = self.sample or (headers, body)
            self._arrived.notify_all()

    def wait_for(self, count: int, timeout_s: float, give_up: Callable[[], object]) -> None:
        """Wait until ``count`` distinct deliveries arrived, the timeout passed or ``give_up()``
        is true."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while len(self.arrivals) < count and not give_up():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._arrived.wait(min(left, 0.5))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def redis_backend(args: argparse.Namespace, _workdir: Path) -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL database and a flushed Redis database, both cleaned up afterwards."""
    broker_url = f"{args.redis_url.rstrip('/')}/{args.redis_db}"
    name = f"notifier_bench_{secrets.token_hex(4)}"
    broker = redis.Redis.from_url(broker_url)
    broker.flushdb()
    try:
        _postgres(args.postgres_url, f'CREATE DATABASE "{name}"')
        database = make_url(args.postgres_url).set(database=name)
        yield database.render_as_string(hide_password=False), broker_url
    finally:
        _postgres(args.postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        broker.flushdb()
        broker.close()


def _postgres(server_url: str, statement: str) -> None:
    with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as connection:
        connection.execute(statement)


@contextmanager
def embedded_backend(_args: argparse.Namespace, workdir: Path) -> Iterator[tuple[str, str]]:
    """SQLite and the filesystem broker inside the temp folder (removed with it)."""
    yield f"sqlite:///{workdir / 'notifier.db'}", f"filesystem://{workdir / 'broker'}"


BACKENDS = {"redis": redis_backend, "embedded": embedded_backend}


def notifier_environment(database_url: str, broker_url: str) -> dict[str, str]:
    """The NOTIFIER_* settings shared by this process and the workers."""
    return {
        "NOTIFIER_DATABASE_URL": database_url,
        "NOTIFIER_BROKER_URL": broker_url,
        "NOTIFIER_ALLOWED_NETWORKS": "127.0.0.0/8",  # the receiver is on loopback
        "NOTIFIER_RETRY_SCHEDULE": "0,1,2",
        "NOTIFIER_SCHEDULER_INTERVAL_S": "1",
        "NOTIFIER_LOG_LEVEL": "WARNING",
    }


def create_notifications(engine: Engine, settings: Settings, count: int, url: str) -> None:
    """Migrate, then add ``count`` webhook notifications on the bench repository."""
    upgrade(engine)
    allowed = parse_networks(settings.allowed_networks)
    with transaction(make_session_factory(engine)) as session:
        for index in range(count):
            create_notification(session, REPOSITORY, EVENT, "webhook", {"url": url},
                                title=f"bench {index}", allowed_networks=allowed)


def start_workers(group: ProcessGroup, settings: Settings, args: argparse.Namespace,
                  workdir: Path) -> None:
    """One fan-out worker, one delivery worker and beat."""
    level = settings.log_level
    group.start("fanout", worker_command("fanout", settings.fanout_queue,
                                         concurrency=args.fanout_concurrency,
                                         pool=args.fanout_pool, loglevel=level))
    group.start("delivery", worker_command("delivery", settings.delivery_queue,
                                           concurrency=args.delivery_concurrency,
                                           pool=args.delivery_pool, loglevel=level))
    group.start("beat", beat_command(workdir / "celerybeat-schedule", level))


def wait_until_ready(app, group: ProcessGroup, timeout_s: float) -> float:
    """Seconds until both workers answer a ping; BenchError if one ends or time runs out."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if group.exited():
            raise BenchError(f"a process ended during start-up: {group.exited()}")
        replies = app.control.ping(timeout=1.0)
        if {"fanout", "delivery"} <= {name.partition("@")[0] for r in replies for name in r}:
            return time.monotonic() - started
    raise BenchError(f"workers did not answer a ping within {timeout_s:g} s")


def publish_events(producer: Producer, count: int, rate: float) -> tuple[float, float]:
    """Publish ``count`` events stamped with their publish time, at most ``rate`` per second
    (0: as fast as possible); returns (start, end)."""
    started = time.time()
    for index in range(count):
        if rate:
            time.sleep(max(0.0, started + index / rate - time.time()))
        producer.publish(REPOSITORY, EVENT,
                         {"updated_tags": ["latest"], "bench_published_at": time.time()})
    return started, time.time()


def delivery_states(engine: Engine) -> dict[str, int]:
    """How many deliveries the ledger holds in each state."""
    with make_session_factory(engine)() as session:
        return dict(session.execute(
            select(Delivery.state, func.count()).group_by(Delivery.state)).all())


def post_rate(url: str, headers: dict[str, str], body: bytes, threads: int,
              duration_s: float) -> float:
    """Plain ``requests.Session`` POSTs per second from ``threads`` threads, one session each."""
    deadline = time.monotonic() + duration_s

    def post_until_deadline(_) -> int:
        sent = 0
        with requests.Session() as session:
            session.trust_env = False  # no proxies: loopback only
            while time.monotonic() < deadline:
                session.post(url, data=body, headers=headers, timeout=5).raise_for_status()
                sent += 1
        return sent

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        sent = sum(pool.map(post_until_deadline, range(threads)))
    return sent / (time.monotonic() - started)


def measure_ceiling(receiver: Receiver, args: argparse.Namespace) -> dict[int, float] | None:
    """POSTs/s replaying a real delivery's body and webhook headers, per thread count."""
    if receiver.sample is None:
        return None
    received_headers, body = receiver.sample
    headers = {name: value for name, value in received_headers.items()
               if name.startswith("webhook-") or name == "content-type"}
    url = receiver.url(CEILING_PATH)
    # A process of its own, as the workers are: the receiver keeps this process's GIL.
    # Bounded without a timeout here: every thread stops at its deadline, every POST has one.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return {threads: pool.submit(post_rate, url, headers, body, threads,
                                     args.ceiling_seconds).result()
                for threads in (1, args.ceiling_threads)}


@dataclass(frozen=True)
class Measurements:
    """What one run measured; times are wall-clock seconds."""

    expected: int
    ready_s: float
    first_published: float
    last_published: float
    arrivals: list[Arrival]
    duplicates: int
    states: dict[str, int]
    body_bytes: int
    ceiling: dict[int, float] | None

    @property
    def complete(self) -> bool:
        return len(self.arrivals) >= self.expected


def run(args: argparse.Namespace, workdir: Path, stack: ExitStack) -> Measurements:
    """Set everything up (registering its clean-up on ``stack``), run the pipeline, measure."""
    database_url, broker_url = stack.enter_context(BACKENDS[args.backend](args, workdir))
    os.environ.update(notifier_environment(database_url, broker_url))
    settings = load_settings()
    receiver = Receiver()
    stack.callback(receiver.close)
    engine = make_engine(database_url)
    stack.callback(engine.dispose)
    create_notifications(engine, settings, args.notifications, receiver.url(HOOK_PATH))
    app = client_app(settings)
    stack.callback(app.close)
    group = ProcessGroup(env=dict(os.environ), log_dir=workdir / "logs")
    stack.callback(group.stop)
    start_workers(group, settings, args, workdir)
    ready_s = wait_until_ready(app, group, args.start_timeout)
    first, last = publish_events(Producer(app, settings), args.events, args.publish_rate)
    expected = args.events * args.notifications
    receiver.wait_for(expected, args.timeout, group.exited)
    group.stop()  # the ledger is read once no worker writes; the ceiling runs on an idle machine
    states = delivery_states(engine)
    return Measurements(
        expected=expected, ready_s=ready_s, first_published=first, last_published=last,
        arrivals=list(receiver.arrivals.values()), duplicates=receiver.duplicates,
        states=states, body_bytes=len(receiver.sample[1]) if receiver.sample else 0,
        ceiling=measure_ceiling(receiver, args),
    )


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    return values[max(0, math.ceil(fraction * len(values)) - 1)]


def report(args: argparse.Namespace, m: Measurements) -> str:
    """The results as one block of text."""
    publish_s = m.last_published - m.first_published
    lines = [
        f"notifier pipeline benchmark: backend {args.backend}, {os.cpu_count()} CPUs",
        f"  load        {args.events} events x {args.notifications} notifications "
        f"= {m.expected} deliveries, published "
        + (f"at {args.publish_rate:g} events/s" if args.publish_rate else "as fast as possible"),
        f"  workers     fan-out {args.fanout_pool} x{args.fanout_concurrency}, delivery "
        f"{args.delivery_pool} x{args.delivery_concurrency}, beat; ready in {m.ready_s:.1f} s",
        f"  publish     {args.events} events in {publish_s:.2f} s "
        f"= {args.events / publish_s:,.0f} events/s",
    ]
    if m.arrivals:
        lines += _delivery_lines(m)
    else:
        lines.append("  deliveries  none arrived")
    states = ", ".join(f"{state} {count}" for state, count in sorted(m.states.items()))
    lines.append(f"  ledger      {states} (once the workers stopped)")
    if m.ceiling:
        rates = ", ".join(f"{threads} thread{'s' if threads > 1 else ''} {rate:,.0f}/s"
                          for threads, rate in m.ceiling.items())
        lines.append(f"  ceiling     plain requests POSTs, {m.body_bytes}-byte body: {rates}")
    return "\n".join(lines)


def _delivery_lines(m: Measurements) -> list[str]:
    last_received = max(a.received_at for a in m.arrivals)
    elapsed_s = last_received - m.first_published
    latencies_ms = sorted((a.received_at - a.published_at) * 1000 for a in m.arrivals)
    lines = [] if m.complete else ["  INCOMPLETE  timed out or a worker ended"]
    return lines + [
        f"  end to end  {len(m.arrivals)}/{m.expected} deliveries in {elapsed_s:.2f} s "
        f"= {len(m.arrivals) / elapsed_s:,.0f} deliveries/s (first publish to last receipt)",
        "  latency     publish to receipt: " + ", ".join(
            f"p{round(q * 100)} {percentile(latencies_ms, q):,.0f} ms"
            for q in (0.5, 0.95, 0.99)) + f", max {latencies_ms[-1]:,.0f} ms",
        f"  duplicates  {m.duplicates} repeated webhook-id(s)",
    ]


def log_tails(log_dir: Path) -> str:
    """The last lines of every process log, to explain a failed or incomplete run."""
    parts = []
    for log in sorted(log_dir.glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        parts.append(f"--- {log.name} (last {len(lines)} lines)\n" + "\n".join(lines))
    return "\n".join(parts) or "(no process logs)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--backend", choices=sorted(BACKENDS), default="redis")
    add("--events", type=int, default=500, help="repo_push events to publish")
    add("--notifications", type=int, default=4, help="webhook notifications on the repository")
    add("--publish-rate", type=float, default=0.0,
        help="events/s to publish at; 0 (default) publishes as fast as possible")
    add("--fanout-pool", default="threads")
    add("--fanout-concurrency", type=int, default=4, help="4 as in the README and Procfile")
    add("--delivery-pool", default="threads", help="threads, prefork, solo ...")
    add("--delivery-concurrency", type=int, default=16)
    add("--timeout", type=float, default=300.0, help="seconds to wait for all deliveries")
    add("--start-timeout", type=float, default=60.0, help="seconds to wait for the workers")
    add("--ceiling-seconds", type=float, default=3.0, help="duration of each ceiling run")
    add("--ceiling-threads", type=int, default=16)
    add("--redis-url", default="redis://127.0.0.1:6379", help="redis backend: server")
    add("--redis-db", type=int, default=13, help="redis backend: database, flushed")
    add("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="redis backend: server where a fresh database is created and dropped")
    return parser.parse_args(argv)


def _exit_on_sigterm(*_) -> None:
    raise SystemExit(128 + signal.SIGTERM)  # unwinds, so everything is cleaned up


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="notifier-bench-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        try:
            measurements = run(args, workdir, stack)
        except BenchError as exc:
            print(f"error: {exc}\n{log_tails(workdir / 'logs')}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted; cleaning up", file=sys.stderr)
            return 130
        print(report(args, measurements), flush=True)
        if not measurements.complete:
            print(log_tails(workdir / "logs"), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
