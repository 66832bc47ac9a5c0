"""kombu's Redis transport, surviving a broker that goes away while a task is in flight.

When Redis disappears under a worker (a restart, a crash, a failover), Celery closes the
consumer's connection and kombu's channel tries to put the unacknowledged messages back; by then
the transport has dropped its link to the connection, and building a Redis client for that raises
``AttributeError: 'NoneType' object has no attribute 'hostname'``, which Celery treats as
unrecoverable: the worker exits (seen in kombu 5.7.0 on a restart of Redis with a task running).
Here that case raises a Redis ``ConnectionError`` instead, which kombu and Celery handle as the
connection error it is: the worker reconnects, and the messages stay in Redis's unacknowledged
set, handed out again after the visibility timeout.
"""

from __future__ import annotations

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous=False):
        if self.connection is None or self.connection.client is None:
            raise RedisConnectionError("the broker connection is already closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
