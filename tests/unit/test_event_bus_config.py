"""The event stream's brokers where none can run here: the FastStream objects `EventBus` builds for
Kafka, RabbitMQ and Redis (and NATS, the default), read back without a connection, and each
bus's publish -> consume path through FastStream's in-memory test brokers. What the real
brokers do with these settings is measured in benchmarks/brokers.py and
tests/integration/test_event_stream_faults.py."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from faststream import AckPolicy

from core.events import EVENTS_SUBJECT
from core.settings import get_settings
from features.stream.bus import (
    ACK_WAIT_S,
    KEEP_S,
    STREAM,
    BrokerUnavailable,
    EventBus,
    consumer_group,
)

PAYLOAD = b'{"event_id": "e1"}'


def bus_for(broker: str, url: str, **events: object) -> EventBus:
    return EventBus(get_settings(events={"broker": broker, "url": url, **events}))


def consuming(bus: EventBus) -> tuple[object, list[list[bytes]]]:
    """`bus` consuming EVENTS_SUBJECT into a list; the one subscriber FastStream holds for it."""
    batches: list[list[bytes]] = []

    async def handle(datas: list[bytes]) -> None:
        batches.append(datas)

    bus.consume(EVENTS_SUBJECT, handle)
    (subscriber,) = bus.broker.subscribers
    return subscriber, batches


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- Kafka: the production path at scale -------------------------------------------------------


def test_kafka_is_configured_without_connecting():
    bus = bus_for("kafka", "kafka:9092", batch_size=500, batch_wait_ms=80)
    subscriber, _ = consuming(bus)
    from faststream.kafka import KafkaBroker
    from faststream.kafka.message import KafkaAckableMessage
    from faststream.kafka.subscriber.usecase import BatchSubscriber

    assert EVENTS_SUBJECT == "aisle.events"
    assert isinstance(bus.broker, KafkaBroker)
    assert not bus.broker.running and subscriber.consumer is None  # nothing was reached
    assert bus.kind == "kafka" and bus.url == "kafka:9092"

    # the producer: every in-sync replica acknowledges, retries never duplicate a message
    client = bus.broker._connection_kwargs
    assert client["bootstrap_servers"] == ["kafka:9092"]
    assert client["acks"] == "all"
    assert client["enable_idempotence"] is True

    # the consumer: a topic per subject, a consumer group, batches, commits only after handle
    assert isinstance(subscriber, BatchSubscriber)
    assert subscriber.topic_names_for_subscribe == ["aisle.events"]
    assert subscriber.group_id == "aisle-aisle-events" == consumer_group(EVENTS_SUBJECT)
    assert subscriber.max_records == 500
    assert subscriber.batch_timeout_ms == 80
    assert subscriber.ack_policy is AckPolicy.MANUAL
    consumer = subscriber._connection_args  # what aiokafka's AIOKafkaConsumer gets
    assert consumer["enable_auto_commit"] is False  # FastStream's default commits on receipt
    assert consumer["auto_offset_reset"] == "earliest"  # a new group reads what is kept
    assert subscriber.parser.msg_class is KafkaAckableMessage  # msg.ack() commits the batch


def test_kafka_events_go_from_publish_to_the_handler_in_memory():
    from faststream.kafka import TestKafkaBroker

    async def main() -> list[list[bytes]]:
        bus = bus_for("kafka", "kafka:9092")
        _, batches = consuming(bus)
        async with TestKafkaBroker(bus.broker):
            await bus.publish(EVENTS_SUBJECT, PAYLOAD)
        return batches

    assert asyncio.run(main()) == [[PAYLOAD]]


def test_a_real_kafka_batch_reaches_the_handler():
    from faststream.kafka import TestKafkaBroker
    from faststream.kafka.testing import build_message

    async def main() -> list[list[bytes]]:
        bus = bus_for("kafka", "kafka:9092")
        subscriber, batches = consuming(bus)
        async with TestKafkaBroker(bus.broker):
            record = await build_message(PAYLOAD, EVENTS_SUBJECT, serializer=None)
            await subscriber.process_message((record, record))  # what getmany() gives
        return batches

    assert asyncio.run(main()) == [[PAYLOAD, PAYLOAD]]


def test_an_unreachable_kafka_is_a_broker_unavailable_at_once():
    async def main() -> None:
        bus = bus_for("kafka", f"127.0.0.1:{free_port()}")
        try:
            await bus.connect()
        finally:
            await bus.close()

    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match=r"kafka broker at 127\.0\.0\.1:\d+"):
        asyncio.run(main())
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("broker", ["kafka", "rabbit", "redis"])
def test_a_broker_the_stack_cannot_run_needs_a_url(broker, monkeypatch):
    monkeypatch.setenv("AISLE_EVENTS__BROKER", broker)
    monkeypatch.delenv("AISLE_EVENTS__URL", raising=False)
    settings = get_settings()
    assert settings.events.broker == broker and settings.events.url is None
    assert not settings.runs_own_broker
    message = rf"AISLE_EVENTS__BROKER={broker} needs AISLE_EVENTS__URL; only NATS runs"
    with pytest.raises(ValueError, match=message):
        _ = settings.broker_url
    with pytest.raises(ValueError, match=message):
        EventBus(settings)


def test_nats_without_a_url_is_the_stacks_own_server():
    settings = get_settings(events={"broker": "nats", "broker_port": 8730})
    assert settings.runs_own_broker
    assert settings.broker_url == f"nats://{settings.serving_host}:8730"


# --- RabbitMQ -----------------------------------------------------------------------------------


def test_rabbit_is_a_durable_queue_per_subject_without_connecting():
    bus = bus_for("rabbit", "amqp://rabbit:5672/")
    subscriber, _ = consuming(bus)
    from faststream.rabbit import RabbitBroker

    assert isinstance(bus.broker, RabbitBroker) and not bus.broker.running
    assert bus.broker._connection_kwargs["url"].endswith("@rabbit:5672/")
    assert subscriber.queue.name == "aisle.events"
    assert subscriber.queue.durable is True  # survives a broker restart
    assert subscriber.ack_policy is AckPolicy.MANUAL
    assert subscriber.channel is None  # no connection was opened


def test_rabbit_messages_are_persistent(monkeypatch):
    from faststream.rabbit import TestRabbitBroker
    from faststream.rabbit import testing as rabbit_testing

    built: list[dict] = []
    build = rabbit_testing.build_message

    async def recording(*args, **kwargs):
        built.append(kwargs)
        return await build(*args, **kwargs)

    monkeypatch.setattr(rabbit_testing, "build_message", recording)

    async def main() -> list[list[bytes]]:
        bus = bus_for("rabbit", "amqp://rabbit:5672/")
        _, batches = consuming(bus)
        async with TestRabbitBroker(bus.broker):
            await bus.publish(EVENTS_SUBJECT, PAYLOAD)
        return batches

    assert asyncio.run(main()) == [[PAYLOAD]]
    (message,) = [m for m in built if m.get("message") == PAYLOAD]  # not the handler's reply
    assert message["persist"] is True  # delivery mode 2: written to disk by the broker
    assert message["routing_key"] == "aisle.events"


# --- Redis Streams ------------------------------------------------------------------------------


def test_redis_is_a_stream_with_a_consumer_group_without_connecting():
    bus = bus_for("redis", "redis://redis:6379", batch_size=250, batch_wait_ms=40)
    subscriber, _ = consuming(bus)
    from faststream.redis import RedisBroker

    assert isinstance(bus.broker, RedisBroker) and not bus.broker.running
    client = bus.broker._connection_kwargs
    assert (client["host"], client["port"]) == ("redis", 6379)
    stream = subscriber.stream_sub
    assert stream.name == "aisle.events"
    assert stream.group == "aisle-aisle-events" == consumer_group(EVENTS_SUBJECT)
    assert stream.consumer == "consumer"
    assert stream.batch is True and stream.max_records == 250
    assert stream.polling_interval == 40
    assert stream.no_ack is False  # entries stay pending until acknowledged (XACK)
    assert subscriber.ack_policy is AckPolicy.MANUAL


def test_redis_events_go_to_the_stream_and_back_in_memory(monkeypatch):
    from faststream.redis import TestRedisBroker

    async def main() -> tuple[list[list[bytes]], list[dict]]:
        bus = bus_for("redis", "redis://redis:6379")
        _, batches = consuming(bus)
        calls: list[dict] = []
        publish = bus.broker.publish

        async def recording(*args, **kwargs):
            calls.append(kwargs)
            return await publish(*args, **kwargs)

        async with TestRedisBroker(bus.broker):
            monkeypatch.setattr(bus.broker, "publish", recording)
            await bus.publish(EVENTS_SUBJECT, PAYLOAD)
        return batches, calls

    batches, calls = asyncio.run(main())
    assert batches == [[PAYLOAD]]  # out of FastStream's binary envelope
    (call,) = calls
    assert call["stream"] == "aisle.events"
    assert call["maxlen"] == 10_000_000  # bounded, so a stalled consumer cannot fill Redis


# --- NATS JetStream (the default) ---------------------------------------------------------------


def test_nats_is_a_durable_pull_consumer_on_a_file_stream_without_connecting():
    bus = bus_for("nats", "nats://nats:4222", batch_size=300, batch_wait_ms=50)
    subscriber, _ = consuming(bus)
    from nats.js.api import StorageType

    assert not bus.broker.running
    assert bus._stream.name == STREAM == "AISLE"
    assert bus._stream.subjects == ["aisle.>"]
    assert bus._stream.config.storage == StorageType.FILE
    assert bus._stream.config.max_age == KEEP_S
    from nats.js.api import AckPolicy as JetStreamAck
    from nats.js.api import DeliverPolicy

    assert subscriber._resolved_subject_string == "aisle.events"
    assert subscriber.stream is bus._stream
    consumer = subscriber.config  # nats-py's ConsumerConfig for the durable consumer
    assert consumer.durable_name == "aisle-aisle-events" == consumer_group(EVENTS_SUBJECT)
    assert consumer.ack_policy == JetStreamAck.EXPLICIT
    assert consumer.deliver_policy == DeliverPolicy.ALL
    assert consumer.ack_wait == ACK_WAIT_S
    assert subscriber.pull_sub.batch is True and subscriber.pull_sub.batch_size == 300
    assert subscriber.pull_sub.timeout == 0.05
    assert subscriber.ack_policy is AckPolicy.MANUAL
