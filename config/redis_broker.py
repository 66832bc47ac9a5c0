"""kombu's Redis transport, surviving a broker that goes away while a task is in flight.

When Redis disappears under a worker (a restart, a crash, a failover), Celery closes the
consumer's connection and kombu's channel tries to put the unacknowledged messages back; by then
the transport has dropped its link to the connection, and building a Redis client for that raises
``AttributeError: 'NoneType' object has no attribute 'hostname'``, which Celery treats as
unrecoverable: the worker exits (seen in kombu 5.7.0 on a restart of Redis with a task running).
Here that case raises a Redis ``ConnectionError`` instead, which kombu and Celery handle as the
connection error it is: the worker reconnects, and the messages stay in Redis's unacknowledged
set, handed out again after the visibility timeout.

kombu also builds a new Redis client object for every command it sends outside the consumer
(each publish, each task event); with redis-py 8 that fills a table of about 170 response
callbacks each time, a third of a publish's CPU. Here a channel keeps one client for its
connection pool (redis-py's client is thread-safe; a pool replaced after a fork or a reconnect
gets a new one).
"""

from __future__ import annotations

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    _sync_client = None

    def _create_client(self, asynchronous=False):
        if asynchronous:
            return super()._create_client(asynchronous=True)
        pool = self.pool
        client = self._sync_client
        if client is None or client.connection_pool is not pool:
            client = self._sync_client = super()._create_client()
        return client

    def _connparams(self, asynchronous=False):
        if self.connection is None or self.connection.client is None:
            raise RedisConnectionError("the broker connection is already closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
