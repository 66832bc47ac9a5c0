"""When the database is away: telling an outage from a bad message, riding it out with short
bounded waits, and saying so in the log once per interval rather than once per message.

A task that meets an unreachable database keeps its message: it waits in place (backing off,
at most ``Settings.database_wait_bound_s``), and if the database is still away it puts the
message back in the queue without counting a try. The caller decides what "back in the queue"
means; this module only waits and reports.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential

from notifier.errors import DatabaseNotReady

log = logging.getLogger(__name__)

T = TypeVar("T")

# SQLSTATEs that mean "not usable right now", not "this statement is wrong": connection
# exceptions (08), deadlocks and serialization failures (40), a lock not available (55P03),
# the server shutting down, crashing or starting up (57P01-57P03), too many connections
# (53300), and a schema not migrated yet (42P01: wait for the operator).
UNAVAILABLE_SQLSTATES = ("08", "40", "55P03", "57P01", "57P02", "57P03", "53300", "42P01")
BACKOFF_FIRST_S = 0.25
BACKOFF_MAX_S = 5.0
SLEEP_SLICE_S = 0.25  # how often a wait looks whether the worker is shutting down


def is_database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the database cannot be used right now (down, restarting,
    unreachable, full of connections, not migrated), as opposed to a bad message or a bug."""
    if isinstance(exc, (DatabaseNotReady, PoolTimeout)):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate:
        return sqlstate.startswith(UNAVAILABLE_SQLSTATES)
    # No SQLSTATE: psycopg failed to connect at all, or SQLite (locked, cannot open the file).
    return isinstance(exc, (OperationalError, InterfaceError))


def first_line(exc: BaseException) -> str:
    """A short, parameter-free description of ``exc`` for logs and dead letters."""
    detail = getattr(exc, "orig", None) or exc
    lines = str(detail).strip().splitlines()
    return f"{type(detail).__name__}: {lines[0]}" if lines else type(detail).__name__


class Outage:
    """One process's view of database outages: bounded waits, and one log line per interval.

    Thread-safe: the threads of a worker share one instance, so a fleet of 16 threads waiting
    for the same database writes one warning per interval, not sixteen.
    """

    def __init__(self, *, wait_s: float, log_interval_s: float,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.wait_s = wait_s
        self.log_interval_s = log_interval_s
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._last_logged: float | None = None
        self._waiting = 0

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def call(self, operation: Callable[[], T], *,
             stopping: Callable[[], bool] = lambda: False) -> T:
        """Run ``operation``; while the database is unavailable, try it again with backoff for
        at most ``wait_s`` (less if ``stopping()`` turns true). Raises the last error if the
        database is still away. ``operation`` must be safe to repeat (one transaction)."""
        try:
            result = operation()  # the hot path: no retry machinery unless something failed
        except Exception as exc:
            if not is_database_unavailable(exc):
                raise
            self.report(exc)
            with self._counted():
                result = self._retrying(stopping)(operation)
        self.recovered()
        return result

    def _retrying(self, stopping: Callable[[], bool]) -> Retrying:
        deadline = self._clock() + self.wait_s
        return Retrying(
            retry=retry_if_exception(is_database_unavailable),
            stop=lambda _state: stopping() or self._clock() >= deadline,
            wait=wait_exponential(multiplier=BACKOFF_FIRST_S, max=BACKOFF_MAX_S),
            sleep=lambda seconds: self._sleep_unless(stopping, seconds),
            before_sleep=self._before_sleep,
            reraise=True,
        )

    def report(self, exc: BaseException) -> None:
        """Note that the database is unavailable; logs at most once per interval."""
        now = self._clock()
        with self._lock:
            if self._down_since is None:
                self._down_since = now
            due = self._last_logged is None or now - self._last_logged >= self.log_interval_s
            if due:
                self._last_logged = now
            down_for, waiting = now - self._down_since, self._waiting
        if due:
            log.warning("database unavailable for %.0f s (%s); %d task(s) waiting, their "
                        "messages stay in the broker and are retried", down_for,
                        first_line(exc), waiting)

    def recovered(self) -> None:
        """Note that the database answered; logs once when an outage ends."""
        if self._down_since is None:
            return
        with self._lock:
            since, self._down_since, self._last_logged = self._down_since, None, None
        if since is not None:
            log.warning("database reachable again after %.0f s", self._clock() - since)

    def _before_sleep(self, state: RetryCallState) -> None:
        self.report(state.outcome.exception())

    def _sleep_unless(self, stopping: Callable[[], bool], seconds: float) -> None:
        end = self._clock() + seconds
        while not stopping() and (left := end - self._clock()) > 0:
            self._sleep(min(SLEEP_SLICE_S, left))

    @contextmanager
    def _counted(self) -> Iterator[None]:
        with self._lock:
            self._waiting += 1
        try:
            yield
        finally:
            with self._lock:
                self._waiting -= 1
