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

kombu takes a message off its queue with BRPOP and only then records it as unacknowledged, in a
second command; if Redis dies between the two, that command fails, the message is never run,
and it is in neither place: with `appendfsync always` the BRPOP is on disk, so an accepted
event was lost (seen in the Redis crash test). Here such a message is kept in the process and
pushed back onto its queue, next in line, as soon as Redis answers again. If the second command
did go through before the connection broke, the message comes back twice: a duplicate fan-out
or delivery message is harmless (fan-out creates nothing twice, a delivery is claimed once).
"""

from __future__ import annotations

import threading
from queue import Empty

from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads
from redis.exceptions import ConnectionError as RedisConnectionError

_stranded: list[tuple[bytes, bytes]] = []  # (queue key, message) taken but not recorded
_stranded_lock = threading.Lock()


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

    def _brpop_read(self, **options):
        """kombu's, except that a message whose recording as unacknowledged fails is kept."""
        try:
            try:
                taken = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                self.client.connection.disconnect()  # the next round reconnects
                raise
            if not taken:
                raise Empty()
            key, item = taken
            queue = bytes_to_str(key).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(queue)
            try:
                self.connection._deliver(loads(bytes_to_str(item)), queue)
            except self.connection_errors:
                with _stranded_lock:
                    _stranded.append((key, item))
                raise
            return True
        finally:
            self._in_poll = None
            self._flush_brpop_reauth()

    def _brpop_start(self, timeout=None):
        if _stranded:
            self._put_back_stranded()
        return super()._brpop_start(timeout)

    def _put_back_stranded(self) -> None:
        with _stranded_lock:
            items = list(_stranded)
            _stranded.clear()
        try:
            client = self._create_client()
            for key, item in items:
                client.rpush(key, item)  # BRPOP takes from the right: next in line
        except self.connection_errors:
            with _stranded_lock:
                _stranded[:0] = items  # Redis is not back yet: the next round tries again

    def _connparams(self, asynchronous=False):
        if self.connection is None or self.connection.client is None:
            raise RedisConnectionError("the broker connection is already closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
