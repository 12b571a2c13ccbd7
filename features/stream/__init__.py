"""The shop's events in real time: the broker behind one interface, and its consumer.

bus.py        EventBus: publish with the broker's ack, consume in acknowledged batches
              (FastStream: NATS JetStream by default, RabbitMQ, Redis Streams, Kafka)
consumer.py   the consumer process (`python -m features.stream`): dead letters, raw zone,
              online sessions (or a durable backlog), then the ack; the answer log
session.py    a shopper's live session in the online store (`user_session_fv`)
zones.py      the files it writes, each durable before the ack
"""
