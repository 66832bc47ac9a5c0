"""The producer against a real Redis broker: one message per valid publish, none otherwise."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import datetime

import pytest
import redis

from config import load_settings
from notifier.errors import BrokerUnavailable, InvalidEventData, InvalidInput, UnknownEvent
from notifier.fanout import DeliveryRef
from notifier.producer import Producer, client_app
from tests.conftest import REDIS_SERVER, redis_client

PUSH = {"updated_tags": ["v1", "latest"]}
UNREACHABLE_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def make_producer(broker_url: str) -> Producer:
    settings = load_settings(broker_url=broker_url)
    return Producer(client_app(settings), settings)


@pytest.fixture
def producer(redis_db):
    producer = make_producer(f"{REDIS_SERVER}/{redis_db}")
    yield producer
    producer.app.close()


@pytest.fixture
def broker(redis_db):
    return redis_client(redis_db)


def queued(broker, queue: str) -> list[dict]:
    return [json.loads(raw) for raw in broker.lrange(queue, 0, -1)]


def task_arguments(message: dict) -> list:
    args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    return args


# --- valid publishes --------------------------------------------------------------------------

def test_a_publish_enqueues_one_fan_out_message(producer, broker):
    event_id = producer.publish("acme/web", "repo_push", PUSH, performer={"entity_name": "alice"})

    assert uuid.UUID(event_id)
    assert broker.llen(producer.settings.fanout_queue) == 1
    [message] = queued(broker, producer.settings.fanout_queue)
    assert message["headers"]["task"] == "notifier.fan_out"
    argsrepr = message["headers"]["argsrepr"]
    assert "repo_push" in argsrepr and "acme/web" in argsrepr and event_id in argsrepr
    [event] = task_arguments(message)
    assert {key: event[key] for key in ("event_id", "repository", "event", "data", "performer")} \
        == {"event_id": event_id, "repository": "acme/web", "event": "repo_push", "data": PUSH,
            "performer": {"entity_name": "alice"}}
    assert datetime.fromisoformat(event["published_at"]).tzinfo is not None


@pytest.mark.parametrize("event_id", ["evt-1", "registry:push.42_a", "A" * 128,
                                      "6f0c5b8e-2d55-4c7e-9a53-3c1f0e8b9a10"])
def test_a_given_event_id_is_used(producer, broker, event_id):
    assert producer.publish("acme/web", "repo_push", PUSH, event_id=event_id) == event_id

    [message] = queued(broker, producer.settings.fanout_queue)
    assert task_arguments(message)[0]["event_id"] == event_id


def test_no_performer_travels_as_an_empty_object(producer, broker):
    producer.publish("acme/web", "build_start", {"build_id": "b1"})

    [message] = queued(broker, producer.settings.fanout_queue)
    assert task_arguments(message)[0]["performer"] == {}


def test_deliveries_go_to_the_delivery_queue(producer, broker):
    ref = DeliveryRef(id=str(uuid.uuid4()), method="webhook", notification_uuid="n-1",
                      event="repo_push", repository="acme/web")

    producer.enqueue_deliveries([ref])

    assert broker.llen(producer.settings.fanout_queue) == 0
    [message] = queued(broker, producer.settings.delivery_queue)
    assert message["headers"]["task"] == "notifier.deliver"
    assert message["headers"]["argsrepr"] == ref.describe()
    assert task_arguments(message) == [ref.id]


def test_an_events_deliveries_go_out_in_one_round_trip_each_with_its_task_sent_event(
        producer, broker, monkeypatch):
    refs = [DeliveryRef(id=str(uuid.uuid4()), method="webhook", notification_uuid=f"n-{i}",
                        event="repo_push", repository="acme/web") for i in range(50)]
    listener = broker.pubsub()
    listener.psubscribe("*celeryev*")
    listener.get_message(timeout=1.0)  # the subscription's confirmation
    producer.enqueue_deliveries(refs[:1])  # connects and declares the queue
    broker.delete(producer.settings.delivery_queue)
    sends = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counted(connection, command, *args, **kwargs):
        sends.append(command)
        return original(connection, command, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    producer.enqueue_deliveries(refs)
    monkeypatch.undo()

    assert len(sends) == 1, sends  # one pipeline: an LPUSH and a task-sent PUBLISH each
    queued_ids = [task_arguments(m)[0] for m in queued(broker, producer.settings.delivery_queue)]
    assert sorted(queued_ids) == sorted(ref.id for ref in refs)
    sent, deadline = set(), time.monotonic() + 10
    while len(sent) < len(refs) and time.monotonic() < deadline:
        event = listener.get_message(timeout=0.5)
        if event and event["type"] == "pmessage":
            body = json.loads(event["data"])
            payload = json.loads(base64.b64decode(body["body"]))
            for one in payload if isinstance(payload, list) else [payload]:
                if one.get("type") == "task-sent":
                    sent.add(one["uuid"])
    listener.close()
    assert len(sent) == len(refs)  # Flower still sees each delivery sent


def test_a_batch_that_does_not_go_out_is_sent_again_one_by_one(producer, broker, monkeypatch):
    from kombu.exceptions import BatchPublishError
    from kombu.transport.redis import PublishBatch

    def broken(batch):  # as when the pipeline's connection died with a Redis restart
        batch.discard()
        raise BatchPublishError("Redis publish batch failed; delivery is uncertain")

    monkeypatch.setattr(PublishBatch, "flush", broken)
    refs = [DeliveryRef(id=str(uuid.uuid4()), method="webhook", notification_uuid=f"n-{i}",
                        event="repo_push", repository="acme/web") for i in range(5)]

    producer.enqueue_deliveries(refs)

    queued_ids = [task_arguments(m)[0] for m in queued(broker, producer.settings.delivery_queue)]
    assert sorted(queued_ids) == sorted(ref.id for ref in refs)


def test_an_unreachable_broker_on_enqueue_is_reported_in_one_line():
    producer = make_producer(UNREACHABLE_BROKER)
    ref = DeliveryRef(id=str(uuid.uuid4()), method="webhook", notification_uuid="n-1",
                      event="repo_push", repository="acme/web")
    try:
        with pytest.raises(BrokerUnavailable) as caught:
            producer.enqueue_deliveries([ref])
    finally:
        producer.app.close()

    assert len(str(caught.value).splitlines()) == 1
    assert UNREACHABLE_BROKER in str(caught.value)


# --- refused publishes ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("call", "error"),
    [
        (dict(event_id=""), InvalidInput),
        (dict(event_id="-leading-dash"), InvalidInput),
        (dict(event_id="has space"), InvalidInput),
        (dict(event_id="a/b"), InvalidInput),
        (dict(event_id="é"), InvalidInput),
        (dict(event_id="A" * 129), InvalidInput),
        (dict(event_id=123), InvalidInput),
        (dict(event="x"), UnknownEvent),
        (dict(data={}), InvalidEventData),
        (dict(data={"updated_tags": []}), InvalidEventData),
        (dict(data=["v1"]), InvalidEventData),
        (dict(performer="alice"), InvalidInput),
        (dict(performer=["alice"]), InvalidInput),
        (dict(repository="no-slash"), InvalidInput),
    ],
)
def test_bad_input_is_refused_and_nothing_is_enqueued(producer, broker, call, error):
    arguments = {"repository": "acme/web", "event": "repo_push", "data": PUSH, **call}

    with pytest.raises(error):
        producer.publish(arguments.pop("repository"), arguments.pop("event"),
                         arguments.pop("data"), **arguments)

    assert broker.llen(producer.settings.fanout_queue) == 0


# --- an unreachable broker ----------------------------------------------------------------------

def unreachable(broker_url: str) -> tuple[BrokerUnavailable, float]:
    producer = make_producer(broker_url)
    started = time.monotonic()
    try:
        with pytest.raises(BrokerUnavailable) as caught:
            producer.publish("acme/web", "repo_push", PUSH)
    finally:
        producer.app.close()
    return caught.value, time.monotonic() - started


def test_an_unreachable_broker_is_reported_quickly_in_one_line():
    error, elapsed_s = unreachable(UNREACHABLE_BROKER)

    message = str(error)
    assert elapsed_s < 10
    assert len(message.splitlines()) == 1
    assert UNREACHABLE_BROKER in message
    assert "nothing was enqueued" in message




@pytest.mark.parametrize(
    ("broker_url", "password"),
    [
        ("redis://:hunter2@127.0.0.1:1/0", "hunter2"),
        ("redis://bob:hunter2@127.0.0.1:1/0", "hunter2"),
        ("redis://bob:hun%40ter2@127.0.0.1:1/0", "ter2"),
        ("redis://:hunter2@tail@127.0.0.1:1/0", "tail"),
    ],
)
def test_the_broker_password_never_shows(broker_url, password):
    error, _ = unreachable(broker_url)

    assert password not in str(error)
    assert "***" in str(error)
