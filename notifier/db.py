"""Database engines and sessions, for PostgreSQL (psycopg 3) and SQLite alike, and the
frequent statements run on the driver."""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from psycopg.pq import ExecStatus
from psycopg.rows import no_result
from psycopg.types.json import Json
from sqlalchemy import (JSON, Executable, Insert, Table, bindparam, create_engine, event, exists,
                        func, inspect, select)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

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


@contextmanager
def hot(factory: sessionmaker[Session]) -> Iterator[Session | Connection]:
    """What the hot path (the claim, the record, fan-out) runs its statements on. On PostgreSQL
    this thread's own connection, in autocommit: each claim, each record and each fan-out's
    write is one statement (atomic by itself), so BEGIN and COMMIT cost no round trip, the ORM
    session's bookkeeping costs no CPU, and no pool checkout either (the connection stays with
    its thread; one that died is replaced on the next use, and ``reconnecting`` runs the unit
    of work again). On SQLite, an ordinary session (a BEGIN IMMEDIATE transaction): the caller
    commits."""
    engine = factory.kw["bind"]
    if engine.dialect.name != "postgresql":
        with factory() as session:
            yield session
        return
    connection = _thread_connection(engine)
    try:
        yield connection
    finally:
        if connection.invalidated:  # its database went away: the next use opens another
            connection.close()
        elif connection.in_transaction():
            connection.rollback()  # autocommit: only ends SQLAlchemy's bookkeeping


_local = threading.local()
_inherited: list = []  # connections a fork copied: the parent's to close, never the child's


def _thread_connection(engine: Engine) -> Connection:
    """This thread's hot connection to ``engine``'s database. A thread keeps one: one to
    another engine (a runtime built again) is closed; one inherited through a fork is kept
    referenced and untouched, so closing it cannot end the parent's session."""
    held = getattr(_local, "held", None)
    if held is not None:
        pid, held_engine, connection = held
        if pid != os.getpid():
            _inherited.append(held)
        elif held_engine is engine and not connection.closed:
            return connection
        else:
            connection.close()
    connection = _hot_engine(engine).connect()
    _local.held = (os.getpid(), engine, connection)
    return connection


@lru_cache(maxsize=8)
def _hot_engine(engine: Engine) -> Engine:
    """``engine``'s database, in autocommit, with one connection per thread that uses it: no
    pool, so however many threads a worker runs, none waits for a connection."""
    hot_engine = create_engine(engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT",
                               hide_parameters=True)

    @event.listens_for(hot_engine, "before_cursor_execute")
    def _seen_by_engine(*args) -> None:  # statement counters on ``engine`` see these too
        if engine._has_events:
            engine.dispatch.before_cursor_execute(*args)

    return hot_engine


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


# --- statements run on the driver ---------------------------------------------------------------
# The ledger's frequent statements (the claim, the record, fan-out's) cost about as much CPU in
# SQLAlchemy's execution (cache key, parameter and result processing) as in psycopg and the
# database together. On PostgreSQL these helpers run them on the psycopg connection instead,
# compiled once and prepared; elsewhere (SQLite) through SQLAlchemy as usual. Rows are dicts.
# Parameters get what SQLAlchemy would add (JSON encoding; a statement's constant values);
# results need nothing (psycopg decodes JSON and timestamptz itself). Failures are SQLAlchemy's,
# as for any statement: a lost connection is invalidated and the error says so, so
# ``reconnecting`` and the outage handling see what they always see.

Params = dict[str, Any]


def first_row(db: Session | Connection, statement: Executable, params: Params
              ) -> Params | None:
    """The first row ``statement`` returns (None without one)."""
    db = _connection(db)
    if db.dialect.name != "postgresql":
        row = db.execute(statement, params).first()
        return None if row is None else dict(row._mapping)
    with _on_driver(db, statement, params) as cursor:
        return cursor.fetchone() if _has_rows(cursor) else None


def all_rows(db: Session | Connection, statement: Executable, params: Params
             ) -> list[Params]:
    """Every row ``statement`` returns."""
    db = _connection(db)
    if db.dialect.name != "postgresql":
        return [dict(row._mapping) for row in db.execute(statement, params)]
    with _on_driver(db, statement, params) as cursor:
        return cursor.fetchall()


def insert_ignore_rows(db: Session | Connection, table: Table, rows: list[Params]) -> None:
    """INSERT ``rows`` (all with the same keys) into ``table``, skipping those whose key exists.
    On PostgreSQL one statement whatever the number of rows (the columns as arrays, unnested),
    so its text stays the same and is prepared."""
    db = _connection(db)
    if db.dialect.name != "postgresql":
        db.execute(insert_ignore(db, table), rows)
        return
    given = tuple(rows[0])
    _on_driver(db, unnest_insert(table, given), unnest_params(table, given, rows)).close()


@lru_cache(maxsize=32)
def unnest_insert(table: Table, given: tuple[str, ...], prefix: str = "", *,
                  missing_only: bool = False) -> Insert:
    """PostgreSQL: INSERT into ``table`` the rows of the array parameters ``prefix + key`` (the
    ``given`` columns and those with a constant default), skipping rows whose key exists. The
    text is the same for any number of rows; ``prefix`` keeps apart the parameters of several
    such inserts in one statement (``unnest_params`` makes the parameters).

    ``missing_only``: leave out first the rows whose key the statement's snapshot sees, for rows
    that mostly exist and are often locked (ON CONFLICT waits for a transaction that has the
    existing row locked to end; a plain read never waits)."""
    keys = given + tuple(_defaults(table, given))
    arrays = [bindparam(prefix + key, type_=ARRAY(table.c[key].type)) for key in keys]
    unnested = func.unnest(*arrays).table_valued(*keys).render_derived()
    rows = select(unnested)
    if missing_only:
        rows = rows.where(~exists().where(*(column == unnested.c[column.key]
                                            for column in table.primary_key.columns)))
    return (postgresql.insert(table).from_select(list(keys), rows, include_defaults=False)
            .on_conflict_do_nothing())


def unnest_params(table: Table, given: tuple[str, ...], rows: list[Params],
                  prefix: str = "") -> Params:
    """The parameters of ``unnest_insert(table, given, prefix)`` for ``rows`` (none: nothing
    is inserted)."""
    params = {prefix + key: [row[key] for row in rows] for key in given}
    params.update((prefix + key, [value] * len(rows))
                  for key, value in _defaults(table, given).items())
    return params


@lru_cache(maxsize=32)
def _defaults(table: Table, given: tuple[str, ...]) -> Params:
    """The values SQLAlchemy would fill in for the columns an INSERT does not name."""
    defaults = {}
    for column in table.columns:
        if column.key in given or column.default is None:
            continue
        if not column.default.is_scalar:
            raise ValueError(f"rows for {table.name} must give {column.key} (its default is "
                             f"computed)")
        defaults[column.key] = column.default.arg
    return defaults


def _connection(db: Session | Connection) -> Connection:
    return db.connection() if isinstance(db, Session) else db


def _on_driver(db: Connection, statement: Executable, params: Params):
    """Execute ``statement``, prepared, on ``db``'s psycopg connection; returns the cursor."""
    sql, defaults, json_names = _compiled(statement, db.dialect)
    params = {**defaults, **params}
    for name, array in json_names:
        params[name] = [_json(item) for item in params[name]] if array else _json(params[name])
    driver = db.connection.driver_connection
    cursor = driver.cursor(row_factory=_dict_row)
    if db._has_events or db.engine._has_events:  # statement counters and loggers see these too
        db.dispatch.before_cursor_execute(db, cursor, sql, params, None, False)
    try:
        cursor.execute(sql, params, prepare=True)
    except driver.Error as exc:
        cursor.close()
        gone = db.dialect.is_disconnect(exc, driver, None)
        if gone:
            db.invalidate(exc)
        raise DBAPIError.instance(sql, None, exc, driver.Error, hide_parameters=True,
                                  connection_invalidated=gone, dialect=db.dialect) from None
    return cursor


def _has_rows(cursor) -> bool:
    result = cursor.pgresult
    return result is not None and result.status == ExecStatus.TUPLES_OK


def _dict_row(cursor):
    """Rows as dicts keyed by column name, like psycopg's ``dict_row``, with the names read off
    the result itself: ``dict_row`` goes through ``cursor.description``, which builds a Column
    object per column per statement (a tenth of the claim's Python time)."""
    if not _has_rows(cursor):
        return no_result
    result = cursor.pgresult
    names = [result.fname(index).decode() for index in range(result.nfields)]
    return lambda values: dict(zip(names, values))


@lru_cache(maxsize=64)
def _compiled(statement: Executable, dialect
              ) -> tuple[str, Params, tuple[tuple[str, bool], ...]]:
    """The SQL text, the parameters it has values for, and its JSON parameters (with whether
    each is an array of JSON values, as ``insert_ignore_rows`` binds)."""
    compiled = statement.compile(dialect=dialect)
    defaults = {name: value for name, value in compiled.params.items()
                if not compiled.binds[name].required}
    json_names = tuple((name, isinstance(bind.type, ARRAY))
                       for name, bind in compiled.binds.items()
                       if isinstance(getattr(bind.type, "item_type", bind.type), JSON))
    return str(compiled), defaults, json_names


def _json(value: Any) -> Any:
    return None if value is None else Json(value)
