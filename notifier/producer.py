"""The producer side: validate an event and hand it to the broker's fan-out queue.

It needs only the broker. Celery is used as a client here (``send_task`` by name), never the
worker's task objects, so a registry can publish without importing the worker code.
"""

from __future__ import annotations

import logging
import re
import uuid
from functools import lru_cache
from typing import Any, Iterable

from config import Settings, get_settings
from config.celery import DELIVER_TASK, FAN_OUT_TASK, celery_config
from notifier.errors import BrokerUnavailable, InvalidInput
from notifier.events import validate_event
from notifier.fanout import DeliveryRef, event_message
from notifier.models import utcnow

log = logging.getLogger(__name__)

_EVENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


class Producer:
    """Sends notifier's two kinds of message through a Celery app (client or worker)."""

    def __init__(self, app, settings: Settings):
        self.app = app
        self.settings = settings

    def publish(self, repository: str, event: str, data: Any = None, *,
                performer: Any = None, event_id: str | None = None,
                test_notification: str | None = None) -> str:
        data = validate_event(repository, event, data)
        if performer is not None and not isinstance(performer, dict):
            raise InvalidInput("performer must be a JSON object")
        if event_id is None:
            event_id = str(uuid.uuid4())
        elif not isinstance(event_id, str) or not _EVENT_ID_RE.match(event_id):
            raise InvalidInput(
                "event_id must be 1-128 characters of letters, digits and . _ : - "
                "starting with a letter or digit")
        message = event_message(repository, event, data, performer or {}, event_id, utcnow(),
                                test_notification)
        self._send(FAN_OUT_TASK, [message], self.settings.fanout_queue, describe_event(message))
        return event_id

    def enqueue_deliveries(self, refs: Iterable[DeliveryRef]) -> None:
        """One message per delivery, all in one broker round trip where the transport batches
        (Redis: one pipeline of LPUSHes and task-sent PUBLISHes, sent when the batch ends).

        A pipeline that does not go out whole (its connection died with a broker restart, say)
        is sent again message by message, with the usual retries and reconnection: a delivery
        sent twice is claimed once."""
        from kombu.exceptions import BatchPublishError

        refs = list(refs)
        if not refs:
            return
        with self.app.producer_or_acquire() as producer:
            try:
                with producer.batch():
                    self._send_deliveries(refs, producer)
            except BatchPublishError as exc:
                log.warning("the broker did not take %d deliveries in one batch (%s); sending "
                            "them one by one", len(refs), _first_line(exc))
                self._send_deliveries(refs, producer)

    def _send_deliveries(self, refs: list[DeliveryRef], producer) -> None:
        for index, ref in enumerate(refs):
            # The first message declares the queue; declaring it again for each of the others
            # (a cache lookup, but a fifth of a message's CPU) would change nothing.
            self._send(DELIVER_TASK, [ref.id], self.settings.delivery_queue, ref.describe(),
                       producer=producer, declare=None if index == 0 else [],
                       outcome=f"some or none of {len(refs)} deliveries were enqueued")

    def resend(self, task: str, args: list) -> None:
        """Send a stored message (a dead letter) to its task again, as it was."""
        if task != FAN_OUT_TASK or len(args) != 1 or not isinstance(args[0], dict):
            raise InvalidInput(f"cannot resend a {task} message with arguments {args!r:.80}")
        self._send(task, args, self.settings.fanout_queue, describe_event(args[0]))

    def _send(self, task: str, args: list, queue: str, argsrepr: str, producer=None,
              outcome: str = "nothing was enqueued", declare: list | None = None) -> None:
        """Send one message; the broker's refusal is BrokerUnavailable, naming the broker
        without its password and saying what was enqueued (``outcome``)."""
        from kombu.exceptions import KombuError

        try:
            self.app.send_task(task, args=args, queue=queue, argsrepr=argsrepr, retry=True,
                               producer=producer, declare=declare)
        except (KombuError, OSError, ValueError) as exc:
            raise BrokerUnavailable(
                f"broker unreachable at {_safe_url(self.settings.broker_url)}: "
                f"{_first_line(exc)}; {outcome}") from None


def describe_event(message: dict) -> str:
    """The fan-out message's argument text in Flower: event, repository and event id."""
    described = f"{message.get('event')} {message.get('repository')} event={message.get('event_id')}"
    if message.get("test_notification"):
        described += f" test of notification={message['test_notification']}"
    return described


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return _safe_url(text[0]) if text else type(exc).__name__


def _safe_url(text: str) -> str:
    """``text`` with the password of any URL in it masked (user info ends at the last ``@``)."""
    return re.sub(r"//([^:@/\s]*):\S*@", r"//\1:***@", text)


def client_app(settings: Settings):
    """A Celery app that only sends (no tasks, no result backend)."""
    from celery import Celery

    app = Celery("notifier-producer", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


@lru_cache(maxsize=1)
def default_producer() -> Producer:
    settings = get_settings()
    return Producer(client_app(settings), settings)


def publish_event(repository: str, event: str, data: Any = None, *, performer: Any = None,
                  event_id: str | None = None) -> str:
    """Validate one event and enqueue it for fan-out; returns its event id.

    Raises InvalidInput (nothing enqueued) or BrokerUnavailable (nothing enqueued).
    """
    return default_producer().publish(repository, event, data, performer=performer,
                                      event_id=event_id)
