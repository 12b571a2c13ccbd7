"""The event stream's settings (AISLE_EVENTS__...): which broker carries the shop's events and the
models' answers, how the consumer batches them, and how much of the answer log is kept."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Broker = Literal["nats", "rabbit", "redis", "kafka"]


class EventStream(BaseModel):
    """Set one with e.g. AISLE_EVENTS__BROKER=kafka AISLE_EVENTS__URL=kafka:9092."""

    broker: Broker = Field(
        "nats",
        description="nats (JetStream; the measured local default, benchmarks/brokers.py), "
        "rabbit (durable queues), redis (streams; durable only with Redis persistence on) or "
        "kafka (the production path at scale).",
    )
    url: str | None = Field(
        None,
        description="The broker's URL, e.g. nats://nats:4222, amqp://user@rabbit:5672/, "
        "redis://redis:6379, kafka:9092. Unset: the stack runs its own NATS server "
        "(`events-broker`, the nats-server wheel) on broker_port, storing under "
        "<data_dir>/events/broker.",
    )
    broker_port: int = Field(
        8730, description="Port of the stack's own NATS server (and the next one: its /healthz)."
    )
    consumer_port: int = Field(
        8732, description="Port of the consumer's /healthz and /metrics (Prometheus)."
    )
    batch_size: int = Field(
        100,
        gt=0,
        description="Broker messages the consumer takes per batch at most (a message holds 1 to "
        "1000 events): a bounded batch keeps a click's wait short when the stream is busy.",
    )
    batch_wait_ms: int = Field(
        50, gt=0, description="... and how long it waits for a batch to fill."
    )
    publish_timeout_s: float = Field(
        2.0, gt=0, description="How long POST /events waits for the broker's ack before 503."
    )
    answer_sample: float = Field(
        1.0, ge=0, le=1, description="Share of the models' answers written to the answer log."
    )
    session_gap_minutes: int = Field(
        30,
        gt=0,
        description="A shopper's session ends after this long without an event; it is also "
        "the window of the session view's `events_30m`.",
    )
    recent_items: int = Field(
        50, gt=0, description="Items of a shopper's recent history the online store keeps."
    )
