"""Database engines and sessions, for PostgreSQL (psycopg 3) and SQLite alike."""

from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from psycopg.rows import dict_row
from sqlalchemy import Executable, Insert, create_engine, event, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from notifier.errors import DatabaseNotReady

SQLITE_BUSY_TIMEOUT_MS = 30_000
T = TypeVar("T")


def make_engine(url: str, *, pre_ping: bool = True) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout so several processes can write.

    ``pre_ping`` checks a pooled PostgreSQL connection before each use, so the first request
    after a database restart does not fail (the API, the command line). It costs a round trip
    per checkout, so the workers turn it off: a connection found dead fails its statement,
    which invalidates the pool, and their units of work run again (``reconnecting``,
    ``notifier.outage``).
    """
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() != "sqlite":
        # hide_parameters: error texts must not quote configs (secrets).
        return create_engine(parsed, pool_pre_ping=pre_ping, pool_size=10, max_overflow=10,
                             hide_parameters=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
                           hide_parameters=True)
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin_immediate)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy issues BEGIN itself (below)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin_immediate(connection) -> None:
    # Take the write lock at BEGIN: a read that later upgrades to a write would fail
    # with "database is locked" instead of waiting.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error."""
    with factory() as session, session.begin():
        yield session


def reconnecting(work: Callable[[], T]) -> T:
    """Run ``work``; once more if it failed because its connection was found dead (a restarted
    database), which also made the pool drop every connection older than that failure. Safe
    for work whose statement did not commit, or whose effect a second run notices."""
    try:
        return work()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    return work()


def check_schema(engine: Engine) -> None:
    """Raise DatabaseNotReady unless the database answers and holds our tables."""
    try:
        tables = set(inspect(engine).get_table_names())
    except (OperationalError, ProgrammingError) as exc:
        detail = str(exc.orig).strip().splitlines()[0]
        raise DatabaseNotReady(f"database unreachable: {detail}") from None
    if "deliveries" not in tables:
        raise DatabaseNotReady("database is not migrated; run `notifier db upgrade`")


def dialect_name(db: Session | Connection) -> str:
    """``postgresql`` or ``sqlite``, for a session or a connection."""
    return db.dialect.name if isinstance(db, Connection) else db.get_bind().dialect.name


def insert_ignore(db: Session | Connection, model) -> Insert:
    """INSERT that skips rows whose key already exists (ON CONFLICT DO NOTHING). Built once
    per dialect and model (statements are immutable; ``.values()`` makes a new one)."""
    return _insert_ignore(dialect_name(db), model)


@lru_cache(maxsize=64)
def _insert_ignore(backend: str, model) -> Insert:
    dialect = postgresql if backend == "postgresql" else sqlite
    return dialect.insert(model).on_conflict_do_nothing()


def run_prepared(db: Connection, statement: Executable, params: dict[str, Any]
                 ) -> dict[str, Any] | None:
    """Run a PostgreSQL statement on ``db``'s psycopg connection, prepared, and return its
    first row as a dict (None without one): for the hot path's few statements, whose
    SQLAlchemy execution (cache key, parameter and result processing) costs about as much CPU
    as psycopg and the database together. ``statement`` is compiled once; its parameters must
    need no type processing on the way in (str, int, bool, aware datetimes) and its columns
    none on the way out (psycopg decodes JSON and timestamptz itself).

    Failures are SQLAlchemy's, as for any statement: a lost connection is invalidated and the
    error says so, so ``reconnecting`` and the outage handling see what they always see."""
    sql, defaults = _compiled(statement, db.dialect)
    driver = db.connection.driver_connection
    try:
        with driver.cursor(row_factory=dict_row) as cursor:
            cursor.execute(sql, {**defaults, **params}, prepare=True)
            return cursor.fetchone() if cursor.description else None
    except driver.Error as exc:
        gone = db.dialect.is_disconnect(exc, driver, None)
        if gone:
            db.invalidate(exc)
        raise DBAPIError.instance(sql, None, exc, driver.Error, hide_parameters=True,
                                  connection_invalidated=gone, dialect=db.dialect) from None


@lru_cache(maxsize=32)
def _compiled(statement: Executable, dialect) -> tuple[str, dict[str, Any]]:
    compiled = statement.compile(dialect=dialect)
    return str(compiled), dict(compiled.params)
