"""The Redis transport turns kombu's 'no connection any more' AttributeError into the
connection error Celery recovers from (a worker outlives a Redis restart)."""

from __future__ import annotations

import pytest
from kombu import Connection
from redis.exceptions import ConnectionError as RedisConnectionError

from config import load_settings
from config.celery import celery_config
from tests.conftest import REDIS_SERVER


def test_the_fleet_uses_the_transport_for_redis_urls_only():
    assert celery_config(load_settings(broker_url="redis://127.0.0.1:6379/0"))[
        "broker_transport"] == "config.redis_broker:Transport"
    assert celery_config(load_settings(broker_url="rediss://127.0.0.1:6380/0"))[
        "broker_transport"] is None


def test_a_channel_whose_connection_was_dropped_raises_a_connection_error(redis_db):
    connection = Connection(f"{REDIS_SERVER}/{redis_db}",
                            transport="config.redis_broker:Transport")
    try:
        channel = connection.channel()
        channel.client.ping()  # a working channel first
        channel._pool = None  # as after a disconnect: the next client builds a new pool
        connection.transport.client = None  # as kombu leaves it while closing
        with pytest.raises(RedisConnectionError, match="already closed"):
            channel._connparams()
        assert isinstance(RedisConnectionError(), connection.transport.connection_errors)
    finally:
        connection.transport.client = connection
        connection.release()


def test_a_channel_keeps_one_client_for_its_commands_and_a_new_one_for_a_new_pool(redis_db):
    connection = Connection(f"{REDIS_SERVER}/{redis_db}",
                            transport="config.redis_broker:Transport")
    try:
        channel = connection.channel()
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second
            assert first.ping()
        channel._after_fork()  # as in a forked worker child: the pools are dropped
        with channel.conn_or_acquire() as after_fork:
            assert after_fork is not first
            assert after_fork.connection_pool is channel.pool
            assert after_fork.ping()
    finally:
        connection.release()
