"""Shared fixtures: real PostgreSQL and Redis (skipped on a laptop without them, failing in CI),
fresh databases, and settings for tests.

Environment knobs: NOTIFIER_TEST_POSTGRES (server URL, default postgresql://postgres@127.0.0.1:5432),
NOTIFIER_TEST_REDIS (server URL, default redis://127.0.0.1:6379), NOTIFIER_TEST_REDIS_DB and
NOTIFIER_TEST_REDIS_FLEET_DB (database numbers, default 11 and 12).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg
import pytest
import redis

from config import load_settings
from notifier.db import make_engine, make_session_factory
from notifier.migrate import upgrade

POSTGRES_SERVER = os.environ.get("NOTIFIER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
REDIS_SERVER = os.environ.get("NOTIFIER_TEST_REDIS", "redis://127.0.0.1:6379")
# Redis database numbers the tests own (two test runs at once need different ones).
REDIS_TEST_DB = int(os.environ.get("NOTIFIER_TEST_REDIS_DB", "11"))
REDIS_FLEET_DB = int(os.environ.get("NOTIFIER_TEST_REDIS_FLEET_DB", "12"))

TEST_SETTINGS = {
    "NOTIFIER_ALLOWED_NETWORKS": "127.0.0.0/8",
    "NOTIFIER_SERVER_HOSTNAME": "registry.example.com",
    "NOTIFIER_PREFERRED_URL_SCHEME": "https",
}


def service_missing(what: str, error: Exception):
    """Skip on a laptop without the service; fail in CI, where it must be there."""
    message = f"{what} is not reachable: {error}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def create_database(prefix: str, template: str | None = None) -> str:
    """A new PostgreSQL database, empty or a copy of ``template`` (a URL); returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    copy = f' TEMPLATE "{template.rsplit("/", 1)[1]}"' if template else ""
    try:
        with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True,
                             connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{copy}')
    except psycopg.OperationalError as exc:
        service_missing("PostgreSQL", exc)
    return f"{POSTGRES_SERVER}/{name}"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_client(db: int) -> redis.Redis:
    client = redis.Redis.from_url(f"{REDIS_SERVER}/{db}", socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_missing("Redis", exc)
    return client


@pytest.fixture(scope="session")
def postgres_url():
    """A migrated PostgreSQL database of this test session's own, dropped at the end."""
    url = create_database("notifier_test")
    upgrade(make_engine(url))
    yield url
    drop_database(url)


@pytest.fixture
def pg_factory(postgres_url):
    engine = make_engine(postgres_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def sqlite_factory(tmp_path: Path):
    """A migrated SQLite database in this test's own folder."""
    engine = make_engine(f"sqlite:///{tmp_path / 'notifier.db'}")
    upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def factory(request):
    """A migrated database, once on PostgreSQL and once on SQLite."""
    return request.getfixturevalue("pg_factory" if request.param == "postgresql"
                                   else "sqlite_factory")


@pytest.fixture
def redis_db():
    """This test's Redis database number, flushed before and after."""
    client = redis_client(REDIS_TEST_DB)
    client.flushdb()
    yield REDIS_TEST_DB
    client.flushdb()


@pytest.fixture
def settings():
    """Settings for in-process tests (loopback receivers allowed, a short schedule)."""
    return load_settings(
        allowed_networks="127.0.0.0/8", server_hostname="registry.example.com",
        preferred_url_scheme="https", retry_schedule="0,0.1,0.2", send_timeout_s=2,
        visibility_timeout_s=10,
    )


@pytest.fixture
def loopback_services(settings):
    """What a send uses (settings and the HTTP helper), with loopback receivers allowed."""
    from notifier.http import HttpClient
    from notifier.methods import Services
    from notifier.netpolicy import parse_networks

    client = HttpClient(timeout_s=5, allowed=parse_networks(["127.0.0.0/8"]),
                        user_agent="notifier", retry_after_max_s=60)
    return Services(settings=settings, http=client)


@pytest.fixture
def unique_repo() -> str:
    return f"ns{uuid.uuid4().hex[:6]}/repo"


@pytest.fixture(scope="session")
def redis_fleet(tmp_path_factory):
    """Real workers and beat on PostgreSQL + Redis."""
    from tests.fleet import running_fleet

    broker = redis_client(REDIS_FLEET_DB)
    broker.flushdb()
    database = create_database("notifier_fleet")
    env = {"NOTIFIER_DATABASE_URL": database,
           "NOTIFIER_BROKER_URL": f"{REDIS_SERVER}/{REDIS_FLEET_DB}"}
    try:
        with running_fleet(tmp_path_factory.mktemp("redis-fleet"), env) as fleet:
            yield fleet
    finally:
        drop_database(database)
        broker.flushdb()


@pytest.fixture(scope="session")
def embedded_fleet(tmp_path_factory):
    """Real workers and beat on the embedded default: SQLite and a local-folder broker."""
    from tests.fleet import running_fleet

    workdir = tmp_path_factory.mktemp("embedded-fleet")
    env = {"NOTIFIER_DATABASE_URL": f"sqlite:///{workdir / 'notifier.db'}",
           "NOTIFIER_BROKER_URL": f"filesystem://{workdir / 'broker'}"}
    with running_fleet(workdir, env) as fleet:
        yield fleet


@pytest.fixture(params=["redis", "embedded"])
def fleet(request):
    """A running fleet, once on PostgreSQL + Redis and once on the embedded default."""
    return request.getfixturevalue(f"{request.param}_fleet")


@pytest.fixture
def receiver():
    """An HTTP receiver on loopback; set ``receiver.statuses`` before publishing."""
    from tests.receivers import Receiver

    made = Receiver()
    yield made
    made.close()


@pytest.fixture(scope="session")
def api_template():
    """A migrated PostgreSQL database holding the API personas, copied for each API test."""
    from tests.api_support import seed_directory

    database = create_database("notifier_api_template")
    engine = make_engine(database)
    upgrade(engine)
    tokens = seed_directory(make_session_factory(engine))
    engine.dispose()
    yield database, tokens
    drop_database(database)


@pytest.fixture
def api(api_template, redis_db):
    """The API (FastAPI's test client) on its own copy of the template database, Redis as its
    broker (this test's Redis database)."""
    from tests.api_support import api_settings, make_api

    template, tokens = api_template
    database = create_database("notifier_api", template=template)
    made = make_api(api_settings(database, f"{REDIS_SERVER}/{redis_db}"), tokens)
    yield made
    made.client.app.state.engine.dispose()
    drop_database(database)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """When a test with a running fleet fails, show the tail of each process's log with it."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for name in ("fleet", "redis_fleet", "embedded_fleet"):
        fleet = item.funcargs.get(name)
        if fleet is not None:
            report.sections.append((f"fleet logs ({name})", fleet.log_tails()))
            return
