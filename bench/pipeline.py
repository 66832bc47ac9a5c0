"""Pipeline benchmark: notifier against the bare-Celery ceiling, in the same run, real workers.

    python bench/pipeline.py --events 500 --notifications 4 --receivers 4 --rounds 3

Each round runs the ceiling (``bench/ceiling.py``: a Celery task that only POSTs the same
body, on the same broker, pool, concurrency and safety settings) and then notifier (publish →
fan-out → delivery → receipt), and prints both rates and their ratio. ``--slow-receiver`` adds
a run with one more receiver that never answers within the send timeout; ``--steady`` measures
latency at fractions of the measured capacity; ``--fanout-notifications`` times one event to
many notifications; ``--ledger-rows`` fills the ledger and runs the rounds again. A benchmark,
not a test: it asserts nothing. Everything it creates (database, Redis database, processes,
temp folder) is removed at the end, also on Ctrl-C or error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterator

import psycopg
import redis
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url

from config import load_settings
from notifier.db import make_engine, make_session_factory, transaction
from notifier.fanout import event_message
from notifier.migrate import upgrade
from notifier.models import Delivery, DeliveryState, Notification, utcnow
from notifier.netpolicy import parse_networks
from notifier.notifications import create_notification
from notifier.producer import Producer, client_app
from notifier.runtime import Runtime
from notifier.supervisor import ProcessGroup, beat_command, worker_command

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `bench` for the ceiling
from bench.ceiling import CEILING_TASK, SAMPLE_ENV  # noqa: E402
from bench.cpu import CpuTally, CpuUnavailable, snapshot  # noqa: E402
from bench.ledger import fill_ledger  # noqa: E402

REPOSITORY = "bench/pipeline"
PARKED = "bench/parked"  # where the slow receiver's notification waits between its runs
FANOUT_REPOSITORY = "bench/fanout"
EVENT = "repo_push"
HOOK_PATH = "/hook"
CEILING_PATH = "/ceiling"
LOG_TAIL_LINES = 20
POLL_S = 0.05
CPU_SETTLE_S = 0.3


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


@dataclass(frozen=True)
class Arrival:
    """One POST as the receiver saw it (wall-clock seconds)."""

    published_at: float
    received_at: float


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # the slow receiver writes to sockets its clients gave up on


class Receiver:
    """A loopback HTTP server that answers 200 (after ``delay_s``) and records arrivals by
    path and ``webhook-id``."""

    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self._lock = threading.Lock()
        self.reset()
        self.sample: tuple[dict[str, str], bytes] | None = None
        self.server = _QuietServer(("127.0.0.1", 0), self._handler_class())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self) -> None:
        with self._lock:
            self.arrivals: dict[str, dict[str, Arrival]] = {HOOK_PATH: {}, CEILING_PATH: {}}
            self.duplicates = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def count(self, path: str) -> int:
        return len(self.arrivals[path])

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers offer

            def do_POST(self):
                received_at = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver._record(self.path, {k.lower(): v for k, v in self.headers.items()},
                                 body, received_at)

            def log_message(self, *args):
                pass

        return Handler

    def _record(self, path: str, headers: dict[str, str], body: bytes,
                received_at: float) -> None:
        published_at = json.loads(body)["bench_published_at"]
        with self._lock:
            seen = self.arrivals.setdefault(path, {})
            if headers["webhook-id"] in seen:
                self.duplicates += 1
            else:
                seen[headers["webhook-id"]] = Arrival(published_at, received_at)
            if path == HOOK_PATH:
                self.sample = self.sample or (headers, body)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class Run:
    """One measured run; times are wall-clock seconds."""

    label: str
    expected: int
    first_published: float
    last_published: float
    arrivals: list[Arrival]
    duplicates: int

    @property
    def complete(self) -> bool:
        return len(self.arrivals) >= self.expected

    @property
    def rate(self) -> float:
        """Receipts per second from the first publish to the last receipt."""
        if not self.arrivals:
            return 0.0
        elapsed = max(a.received_at for a in self.arrivals) - self.first_published
        return len(self.arrivals) / elapsed if elapsed > 0 else 0.0

    def latency_ms(self, fraction: float) -> float:
        values = sorted((a.received_at - a.published_at) * 1000 for a in self.arrivals)
        return percentile(values, fraction) if values else math.nan

    def describe(self) -> str:
        text = (f"{self.label:<22} {len(self.arrivals):>6}/{self.expected:<6} "
                f"{self.rate:8.1f}/s  p50 {self.latency_ms(0.5):7.0f} ms  "
                f"p99 {self.latency_ms(0.99):7.0f} ms  max {self.latency_ms(1.0):7.0f} ms")
        if self.duplicates:
            text += f"  {self.duplicates} duplicate(s)"
        return text + ("" if self.complete else "  INCOMPLETE")


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    return values[max(0, math.ceil(fraction * len(values)) - 1)]


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


def notifier_environment(args: argparse.Namespace, database_url: str, broker_url: str,
                         workdir: Path) -> dict[str, str]:
    """The settings shared by this process, the workers and the ceiling worker."""
    return {
        "NOTIFIER_DATABASE_URL": database_url,
        "NOTIFIER_BROKER_URL": broker_url,
        "NOTIFIER_ALLOWED_NETWORKS": "127.0.0.0/8",  # the receivers are on loopback
        "NOTIFIER_RETRY_SCHEDULE": "0,1,2",
        "NOTIFIER_SCHEDULER_INTERVAL_S": "1",
        "NOTIFIER_SEND_TIMEOUT_S": f"{args.send_timeout:g}",
        "NOTIFIER_MAX_IN_FLIGHT_PER_ENDPOINT": str(args.max_in_flight),
        # The slow receiver's notification must stay enabled through its run.
        "NOTIFIER_MAX_FAILURES": "1000000",
        "NOTIFIER_LOG_LEVEL": "WARNING",
        SAMPLE_ENV: str(workdir / "ceiling-sample.json"),
    }


class Bench:
    """The processes, receivers and notifications of one benchmark run."""

    def __init__(self, args: argparse.Namespace, workdir: Path, stack: ExitStack):
        self.args, self.workdir = args, workdir
        database_url, broker_url = stack.enter_context(BACKENDS[args.backend](args, workdir))
        os.environ.update(notifier_environment(args, database_url, broker_url, workdir))
        self.settings = load_settings()
        self.receivers = [Receiver() for _ in range(args.receivers)]
        self.slow = Receiver(delay_s=args.send_timeout + 1) if args.slow_receiver else None
        for receiver in self.receivers + [self.slow] * bool(self.slow):
            stack.callback(receiver.close)
        self.engine = make_engine(database_url)
        stack.callback(self.engine.dispose)
        self.factory = make_session_factory(self.engine)
        upgrade(self.engine)
        self.app = client_app(self.settings)
        stack.callback(self.app.close)
        self.producer = Producer(self.app, self.settings)
        self.group = ProcessGroup(env=dict(os.environ), log_dir=workdir / "logs")
        stack.callback(self.group.stop)
        self.ceiling_queue = f"{self.settings.queue_prefix}.bench-ceiling"
        self.slow_uuid: str | None = None
        self.cpu = CpuTally() if args.cpu else None

    def add_notifications(self, repository: str, urls: list[str]) -> list[str]:
        allowed = parse_networks(self.settings.allowed_networks)
        with transaction(self.factory) as session:
            return [create_notification(session, repository, EVENT, "webhook", {"url": url},
                                        title=f"bench {index}", allowed_networks=allowed).uuid
                    for index, url in enumerate(urls)]

    def spread(self, count: int, path: str) -> list[str]:
        """``count`` URLs, round-robin over the healthy receivers."""
        return [self.receivers[i % len(self.receivers)].url(path) for i in range(count)]

    def start(self) -> float:
        args, level = self.args, self.settings.log_level
        self.add_notifications(REPOSITORY, self.spread(args.notifications, HOOK_PATH))
        if self.slow:
            [self.slow_uuid] = self.add_notifications(PARKED, [self.slow.url(HOOK_PATH)])
        self.group.start("fanout", worker_command(
            "fanout", self.settings.fanout_queue, concurrency=args.fanout_concurrency,
            pool=args.fanout_pool, loglevel=level))
        self.group.start("delivery", worker_command(
            "delivery", self.settings.delivery_queue, concurrency=args.delivery_concurrency,
            pool=args.delivery_pool, loglevel=level))
        self.group.start("ceiling", worker_command(
            "ceiling", self.ceiling_queue, concurrency=args.delivery_concurrency,
            pool=args.delivery_pool, loglevel=level, app="bench.ceiling"))
        self.group.start("beat", beat_command(self.workdir / "celerybeat-schedule", level))
        return self.wait_until_ready({"fanout", "delivery", "ceiling"})

    def wait_until_ready(self, names: set[str]) -> float:
        started = time.monotonic()
        while time.monotonic() - started < self.args.start_timeout:
            if self.group.exited():
                raise BenchError(f"a process ended during start-up: {self.group.exited()}")
            replies = self.app.control.ping(timeout=1.0)
            if names <= {name.partition("@")[0] for r in replies for name in r}:
                return time.monotonic() - started
        raise BenchError(f"workers did not answer a ping within {self.args.start_timeout:g} s")

    def warm_up(self) -> None:
        """One event through notifier: warms every process and gives the ceiling its body."""
        run = self.notifier_run("warm-up", 1)
        if not run.complete:
            raise BenchError("the warm-up event was not delivered")
        headers, body = next(r.sample for r in self.receivers if r.sample)
        kept = {k: v for k, v in headers.items()
                if k.startswith("webhook-") or k in ("content-type", "user-agent")}
        Path(os.environ[SAMPLE_ENV]).write_text(json.dumps({"headers": kept,
                                                            "body": json.loads(body)}))

    def _collect(self, label: str, path: str, expected: int, first: float, last: float) -> Run:
        deadline = time.monotonic() + self.args.timeout
        while (sum(r.count(path) for r in self.receivers) < expected
               and time.monotonic() < deadline and not self.group.exited()):
            time.sleep(POLL_S)
        arrivals = [a for r in self.receivers for a in r.arrivals[path].values()]
        return Run(label, expected, first, last, arrivals,
                   sum(r.duplicates for r in self.receivers))

    def _reset(self) -> None:
        for receiver in self.receivers + [self.slow] * bool(self.slow):
            receiver.reset()

    def ceiling_run(self, events: int) -> Run:
        """``events`` x notifications bare Celery POSTs, spread like the notifications."""
        self._reset()
        urls = self.spread(self.args.notifications, CEILING_PATH)
        started = time.time()
        for index in range(events * len(urls)):
            self.app.send_task(CEILING_TASK, args=[urls[index % len(urls)], f"c{index}",
                                                   time.time()], queue=self.ceiling_queue)
        return self._collect("ceiling (bare Celery)", CEILING_PATH, events * len(urls),
                             started, time.time())

    def notifier_run(self, label: str, events: int, rate: float = 0.0) -> Run:
        """Publish ``events`` (at ``rate``/s, 0 = at once); waits for the healthy receipts."""
        self._reset()
        started = time.time()
        for index in range(events):
            if rate:
                time.sleep(max(0.0, started + index / rate - time.time()))
            self.producer.publish(REPOSITORY, EVENT, {"updated_tags": ["latest"],
                                                      "bench_published_at": time.time()})
        return self._collect(label, HOOK_PATH, events * self.args.notifications, started,
                             time.time())

    def slow_run(self, events: int) -> Run:
        """A notifier run with the slow receiver's notification on the repository too."""
        self._move_slow(REPOSITORY)
        try:
            return self.notifier_run("notifier + slow", events)
        finally:
            self._move_slow(PARKED)
            self._drain_slow()

    def _move_slow(self, repository: str) -> None:
        with transaction(self.factory) as session:
            session.execute(update(Notification).where(Notification.uuid == self.slow_uuid)
                            .values(repository=repository, number_of_failures=0, enabled=True))

    def _drain_slow(self) -> None:
        """End the slow receiver's backlog (it would take minutes) before the next run: its
        waiting deliveries are marked failed, again until its last attempts have timed out."""
        waiting = [DeliveryState.PENDING.value, DeliveryState.RETRYING.value]
        deadline = time.monotonic() + self.args.send_timeout * 3 + 10
        while True:
            idle = not self._slow_in_flight() or time.monotonic() > deadline
            with transaction(self.factory) as session:
                session.execute(update(Delivery).where(
                    Delivery.notification_uuid == self.slow_uuid, Delivery.state.in_(waiting))
                    .values(state=DeliveryState.FAILED.value, next_attempt_at=None))
            if idle:
                return
            time.sleep(0.2)

    def _slow_in_flight(self) -> int:
        with self.factory() as session:
            return session.scalar(select(func.count()).select_from(Delivery).where(
                Delivery.notification_uuid == self.slow_uuid,
                Delivery.state == DeliveryState.DELIVERING.value))

    def rounds(self, title: str) -> list[tuple[Run, ...]]:
        """Interleaved runs: ceiling, notifier (and notifier + slow), ``--rounds`` times."""
        print(title, flush=True)
        results = []
        for number in range(1, self.args.rounds + 1):
            runs = [self.measured("ceiling", lambda: self.ceiling_run(self.args.events)),
                    self.measured("notifier",
                                  lambda: self.notifier_run("notifier", self.args.events))]
            if self.slow:
                runs.append(self.measured("notifier + slow",
                                          lambda: self.slow_run(self.args.events)))
            for run in runs:
                print(f"  round {number}  {run.describe()}", flush=True)
            print(f"  round {number}  ratio notifier/ceiling {runs[1].rate / runs[0].rate:.2f}"
                  + (f", healthy throughput with the slow receiver "
                     f"{runs[2].rate / runs[1].rate:.2f}x, p99 "
                     f"{runs[2].latency_ms(0.99) / runs[1].latency_ms(0.99):.2f}x"
                     if self.slow else ""), flush=True)
            results.append(tuple(runs))
        print(summary(results), flush=True)
        if self.cpu:
            print(self.cpu.table(), flush=True)
            self.cpu = CpuTally()  # the next rounds (a full ledger) are counted on their own
        return results

    def measured(self, kind: str, run: Callable[[], Run]) -> Run:
        """``run()``, with the CPU every process spent on it when ``--cpu`` (counted until the
        workers have settled: they record and acknowledge after the receiver has the POST)."""
        if self.cpu is None:
            return run()
        workers = {name: process.pid for name, process in self.group.processes.items()}
        before = snapshot(workers)
        result = run()
        time.sleep(CPU_SETTLE_S)
        self.cpu.add(kind, before, snapshot(workers), len(result.arrivals))
        return result

    def steady(self, capacity: float) -> None:
        """Latency at fractions of the measured capacity (deliveries/s)."""
        for fraction in self.args.steady:
            rate = fraction * capacity / self.args.notifications
            events = max(1, round(rate * self.args.steady_seconds))
            run = self.notifier_run(f"steady {fraction:g}x = {rate * self.args.notifications:.0f}/s",
                                    events, rate)
            print(f"  {run.describe()}", flush=True)

    def fan_out_many(self) -> None:
        """One event to ``--fanout-notifications`` notifications: the fan-out's statements and
        time, the enqueueing time, and the time until all are received."""
        count = self.args.fanout_notifications
        self.add_notifications(FANOUT_REPOSITORY, self.spread(count, HOOK_PATH))
        runtime = Runtime.from_settings(self.settings)
        statements = []
        engine = runtime.factory.kw["bind"]
        sa_event.listen(engine, "before_cursor_execute", lambda *a: statements.append(1))
        self._reset()
        started = time.time()
        message = event_message(FANOUT_REPOSITORY, EVENT, {"updated_tags": ["latest"],
                                                           "bench_published_at": started},
                                {}, f"bench-fanout-{secrets.token_hex(4)}", utcnow())
        refs = runtime.fan_out(message)
        recorded = time.time()
        self.producer.enqueue_deliveries(refs)
        enqueued = time.time()
        run = self._collect("fan-out", HOOK_PATH, count, started, enqueued)
        engine.dispose()
        print(f"fan-out     1 event to {count} notifications: recorded in "
              f"{(recorded - started) * 1000:.0f} ms ({len(statements)} statements), "
              f"{len(refs)} deliveries enqueued in {(enqueued - recorded) * 1000:.0f} ms, "
              f"{len(run.arrivals)} received {max((a.received_at for a in run.arrivals), default=started) - started:.2f} s "
              f"after the start", flush=True)


def summary(results: list[tuple[Run, ...]]) -> str:
    """Median and range over the rounds."""
    def line(name: str, values: list[float]) -> str:
        return (f"  {name:<40} median {statistics.median(values):.2f}  "
                f"range {min(values):.2f}-{max(values):.2f}")

    lines = [line("ceiling deliveries/s", [r[0].rate for r in results]),
             line("notifier deliveries/s", [r[1].rate for r in results]),
             line("ratio notifier/ceiling", [r[1].rate / r[0].rate for r in results])]
    if len(results[0]) > 2:
        lines += [line("slow receiver: healthy throughput ratio",
                       [r[2].rate / r[1].rate for r in results]),
                  line("slow receiver: healthy p99 ratio",
                       [r[2].latency_ms(0.99) / r[1].latency_ms(0.99) for r in results])]
    return "\n".join(lines)


def log_tails(log_dir: Path) -> str:
    """The last lines of every process log, to explain a failed or incomplete run."""
    parts = []
    for log in sorted(log_dir.glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        parts.append(f"--- {log.name} (last {len(lines)} lines)\n" + "\n".join(lines))
    return "\n".join(parts) or "(no process logs)"


def main_run(args: argparse.Namespace, workdir: Path, stack: ExitStack) -> bool:
    bench = Bench(args, workdir, stack)
    ready_s = bench.start()
    print(f"notifier pipeline benchmark: backend {args.backend}, {os.cpu_count()} CPUs; "
          f"{args.events} events x {args.notifications} notifications over {args.receivers} "
          f"receiver(s){' + 1 slow receiver' if args.slow_receiver else ''}; delivery and "
          f"ceiling workers {args.delivery_pool} x{args.delivery_concurrency}, fan-out "
          f"{args.fanout_pool} x{args.fanout_concurrency}; ready in {ready_s:.1f} s", flush=True)
    bench.warm_up()
    results = bench.rounds("rounds (interleaved, same workers, empty ledger):")
    if args.steady:
        bench.steady(statistics.median(r[1].rate for r in results))
    if args.fanout_notifications:
        bench.fan_out_many()
    if args.ledger_rows:
        if args.backend != "redis":
            raise BenchError("--ledger-rows needs the redis backend (PostgreSQL)")
        started = time.monotonic()
        fill_ledger(bench.engine, args.ledger_rows, args.waiting_retries)
        print(f"ledger      filled with {args.ledger_rows:,} delivered deliveries (and "
              f"attempts) and {args.waiting_retries:,} waiting retries in "
              f"{time.monotonic() - started:.0f} s", flush=True)
        full = bench.rounds("rounds with the full ledger:")
        empty_ratio = statistics.median(r[1].rate / r[0].rate for r in results)
        full_ratio = statistics.median(r[1].rate / r[0].rate for r in full)
        print(f"  full/empty ledger (median ratios): {full_ratio / empty_ratio:.2f}", flush=True)
        results += full
    return all(run.complete for runs in results for run in runs)


def _fractions(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--backend", choices=sorted(BACKENDS), default="redis")
    add("--events", type=int, default=500, help="repo_push events per run")
    add("--notifications", type=int, default=4, help="webhook notifications on the repository")
    add("--receivers", type=int, default=4,
        help="receivers (own ports) the notifications are spread over; 1: all to one")
    add("--slow-receiver", action="store_true",
        help="each round adds a run with one more receiver that answers after the timeout")
    add("--rounds", type=int, default=3, help="interleaved ceiling/notifier rounds")
    add("--steady", type=_fractions, default=[],
        help="fractions of the measured capacity to measure latency at, e.g. 0.25,0.5")
    add("--steady-seconds", type=float, default=20.0)
    add("--fanout-notifications", type=int, default=0,
        help="time one event to this many notifications (e.g. 1000)")
    add("--ledger-rows", type=int, default=0,
        help="then fill the ledger with this many delivered deliveries and run again")
    add("--waiting-retries", type=int, default=100_000, help="with --ledger-rows")
    add("--send-timeout", type=float, default=2.0, help="seconds; the slow receiver exceeds it")
    add("--max-in-flight", type=int, default=8, help="NOTIFIER_MAX_IN_FLIGHT_PER_ENDPOINT")
    add("--cpu", action="store_true",
        help="print CPU per delivery by process (workers, PostgreSQL, Redis; Linux /proc)")
    add("--fanout-pool", default="threads")
    add("--fanout-concurrency", type=int, default=4, help="4 as in the README and Procfile")
    add("--delivery-pool", default="threads", help="threads, prefork, solo ...")
    add("--delivery-concurrency", type=int, default=16)
    add("--timeout", type=float, default=300.0, help="seconds to wait for each run")
    add("--start-timeout", type=float, default=60.0, help="seconds to wait for the workers")
    add("--redis-url", default="redis://127.0.0.1:6379", help="redis backend: server")
    add("--redis-db", type=int, default=13, help="redis backend: database, flushed")
    add("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="redis backend: server where a fresh database is created and dropped")
    args = parser.parse_args(argv)
    if args.receivers < 1 or args.notifications < 1 or args.rounds < 1:
        parser.error("--receivers, --notifications and --rounds must be at least 1")
    return args


def _exit_on_sigterm(*_) -> None:
    raise SystemExit(128 + signal.SIGTERM)  # unwinds, so everything is cleaned up


def run_in_workdir(body: Callable[[Path, ExitStack], bool]) -> int:
    """Run ``body`` in a fresh folder: the exit status, and everything removed afterwards
    (also on an error, Ctrl-C or SIGTERM); the processes' log tails when it failed."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="notifier-bench-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        try:
            complete = body(workdir, stack)
        except (BenchError, CpuUnavailable) as exc:
            print(f"error: {exc}\n{log_tails(workdir / 'logs')}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted; cleaning up", file=sys.stderr)
            return 130
        if not complete:
            print(log_tails(workdir / "logs"), file=sys.stderr)
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_in_workdir(lambda workdir, stack: main_run(args, workdir, stack))


if __name__ == "__main__":
    sys.exit(main())
