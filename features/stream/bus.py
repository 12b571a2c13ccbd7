"""The event stream's broker behind one small interface, over FastStream (one typed client for
NATS JetStream, RabbitMQ, Redis Streams and Kafka; AISLE_EVENTS__BROKER picks one).

    bus = EventBus(settings)
    await bus.connect()
    await bus.publish(EVENTS_SUBJECT, payload)         # returns once the broker holds it
    bus.consume(EVENTS_SUBJECT, handle)                # before start(): handle(list[bytes])
    await bus.start(); ...; await bus.close()

A consumed batch is acknowledged only after `handle` returned; when it raises, the batch is
handed back (negative ack) and comes again: at-least-once delivery, so every write downstream
must be idempotent. What each broker keeps:

    nats    one JetStream stream `AISLE` (file storage, 7 days) over the subjects aisle.>; a durable
            pull consumer per subject, batches of up to AISLE_EVENTS__BATCH_SIZE messages
    rabbit  a durable queue per subject, persistent messages, publisher confirms; one message
            per call (RabbitMQ has no batch delivery)
    redis   a stream per subject with a consumer group; durable only where Redis persists
    kafka   a topic per subject (acks from all in-sync replicas, idempotent producer), a consumer
            group, manual commits
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from core.settings import Settings

log = logging.getLogger(__name__)

STREAM = "AISLE"  # the JetStream stream holding every subject
KEEP_S = 7 * 24 * 3600  # what the broker keeps at most: a consumer down for a week loses nothing
ACK_WAIT_S = 15.0  # a batch not acknowledged by then is delivered again (a killed consumer)
Handler = Callable[[list[bytes]], Awaitable[None]]


class BrokerUnavailable(RuntimeError):
    """The broker did not take a message in time: tell the sender to retry (HTTP 503)."""


def consumer_group(subject: str) -> str:
    return "aisle-" + subject.replace(".", "-")


class EventBus:
    """One broker connection: publishing with the broker's acknowledgement, batched consuming."""

    def __init__(self, settings: Settings) -> None:
        self.kind = settings.events.broker
        self.url = settings.broker_url
        self.batch_size = settings.events.batch_size
        self.wait_s = settings.events.batch_wait_ms / 1000
        self.publish_timeout_s = settings.events.publish_timeout_s
        self.broker = _broker(self.kind, self.url)
        self._stream: Any = None
        if self.kind == "nats":
            patch_pull_timeout()
            from faststream.nats import JStream
            from nats.js.api import StorageType

            self._stream = JStream(
                STREAM, subjects=["aisle.>"], storage=StorageType.FILE, max_age=KEEP_S
            )

    async def connect(self) -> None:
        try:
            await self.broker.connect()
        except Exception as exc:  # each client raises its own kind
            raise BrokerUnavailable(f"{self.kind} broker at {self.url}: {exc}") from exc

    async def start(self) -> None:
        await self.broker.start()

    async def close(self) -> None:
        await self.broker.stop()

    async def publish(self, subject: str, payload: bytes) -> None:
        """Returns once the broker holds `payload` durably (its ack); BrokerUnavailable else."""
        try:
            if self.kind == "nats":
                await self.broker.publish(
                    payload, subject, stream=STREAM, timeout=self.publish_timeout_s
                )
            elif self.kind == "rabbit":
                await self.broker.publish(
                    payload, _rabbit_queue(subject), persist=True, timeout=self.publish_timeout_s
                )
            elif self.kind == "redis":
                await self.broker.publish(payload, stream=subject, maxlen=10_000_000)
            else:
                await self.broker.publish(payload, subject)
        except Exception as exc:  # timeouts, no responders, a closed connection...
            raise BrokerUnavailable(f"{self.kind} broker did not take the message: {exc}") from exc

    def consume(self, subject: str, handle: Handler) -> None:
        """Deliver `subject`'s messages to `handle` in batches; acknowledge after it returns."""
        from faststream import AckPolicy, Context

        async def on_batch(msg: Any = Context("message")) -> None:
            raw = msg.raw_message
            if isinstance(raw, dict):  # redis: a batch of stream entries, each in its envelope
                datas = [_redis_entry(entry) for entry in raw["data"]]
            else:
                many = isinstance(raw, list | tuple)  # Kafka hands a batch over as a tuple
                datas = [_data(m) for m in raw] if many else [_data(raw)]
            try:
                await handle(datas)
            except Exception:
                log.exception("a batch of %d from %s failed; it comes again", len(datas), subject)
                await msg.nack()
                return
            await msg.ack()

        manual = AckPolicy.MANUAL
        if self.kind == "nats":
            from faststream.nats import PullSub
            from nats.js.api import ConsumerConfig

            subscriber = self.broker.subscriber(
                subject,
                stream=self._stream,
                durable=consumer_group(subject),
                config=ConsumerConfig(ack_wait=ACK_WAIT_S, max_ack_pending=100_000),
                pull_sub=PullSub(batch_size=self.batch_size, timeout=self.wait_s, batch=True),
                ack_policy=manual,
            )
        elif self.kind == "rabbit":
            subscriber = self.broker.subscriber(_rabbit_queue(subject), ack_policy=manual)
        elif self.kind == "redis":
            from faststream.redis import StreamSub

            subscriber = self.broker.subscriber(
                stream=StreamSub(
                    subject,
                    group=consumer_group(subject),
                    consumer="consumer",
                    batch=True,
                    max_records=self.batch_size,
                    polling_interval=int(self.wait_s * 1000),
                ),
                ack_policy=manual,
            )
        else:
            subscriber = self.broker.subscriber(
                subject,
                group_id=consumer_group(subject),
                batch=True,
                max_records=self.batch_size,
                batch_timeout_ms=int(self.wait_s * 1000),
                auto_offset_reset="earliest",
                ack_policy=manual,
            )
        subscriber(on_batch)


def patch_pull_timeout() -> None:
    """FastStream 0.7.8's NATS batch pull loop catches `nats.errors.TimeoutError`, but nats-py
    2.16's `fetch()` raises the builtin TimeoutError when a partly filled batch runs out of time:
    the consuming task dies and restarts, and the messages it had fetched wait unacknowledged for
    the ack wait (events a click should bring in a second came 15-30 s late; measured in
    benchmarks/brokers.py). The builtin class is a base of nats.errors.TimeoutError, so catching
    it there catches both: harmless once FastStream fixes it (ag2ai/faststream#2219 is near)."""
    from faststream.nats.subscriber.usecases import stream_pull_subscriber

    stream_pull_subscriber.TimeoutError = TimeoutError  # type: ignore[misc]


def _broker(kind: str, url: str) -> Any:
    """FastStream's broker of `kind`, quiet (Aisle logs what matters itself)."""
    quiet = logging.getLogger("aisle.stream.broker")
    quiet.setLevel(logging.WARNING)
    if kind == "nats":
        from faststream.nats import NatsBroker

        return NatsBroker(url, logger=quiet, max_reconnect_attempts=-1, reconnect_time_wait=0.5)
    if kind == "rabbit":
        from faststream.rabbit import RabbitBroker

        return RabbitBroker(url, logger=quiet)
    if kind == "redis":
        from faststream.redis import RedisBroker

        return RedisBroker(url, logger=quiet)
    if kind == "kafka":
        from faststream.kafka import KafkaBroker

        return KafkaBroker(url, logger=quiet, acks="all", enable_idempotence=True)
    raise ValueError(f"unknown broker {kind!r}: nats, rabbit, redis or kafka")


def _rabbit_queue(subject: str) -> Any:
    from faststream.rabbit import RabbitQueue

    return RabbitQueue(subject, durable=True)


def _data(message: Any) -> bytes:
    """The bytes of one client message (nats Msg.data, aio-pika body, Kafka value...)."""
    for name in ("data", "body", "value"):
        value = getattr(message, name, None)
        if isinstance(value, bytes | bytearray):
            return bytes(value)
    raise TypeError(f"cannot read the payload of a {type(message).__name__}: {message!r:.300}")


def _redis_entry(entry: dict[bytes, bytes]) -> bytes:
    """The payload of one Redis stream entry, out of FastStream's binary envelope."""
    from faststream.redis.parser.binary import BinaryMessageFormatV1

    body, _ = BinaryMessageFormatV1.parse(entry[b"__data__"])
    return body
