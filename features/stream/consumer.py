"""The event stream's consumer: a process of the stack (`events-consumer`, restarted by the
supervisor when it dies) that takes the shop's events and the models' answers off the broker.

    python -m features.stream            (what `aisle stack up` starts)

Per batch of events, in this order:
  1. messages that are not events (not JSON, a field missing or wrong) -> dead letters, with the
     reason, in the quarantine zone
  2. the events -> the raw zone, a durable file per UTC day (features.stream.zones)
  3. the events -> the online store: each shopper's live session (features.stream.session). When
     the online store does not take them, the batch goes to a durable backlog instead, replayed
     oldest first every second until the store is back (while a backlog exists, new batches
     queue behind it, so sessions stay in order)
  4. acknowledged to the broker, only now: a consumer killed before this gets the batch again,
     and every write above is idempotent (file per delivery, deduplicated by event_id; sessions
     skip ids they hold)
Answers go to the answer log (answers/date=<day>/), dead letters likewise.

GET /healthz and /metrics (Prometheus) on AISLE_EVENTS__CONSUMER_PORT.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from core.events import ANSWERS_SUBJECT, EVENTS_SUBJECT, Event, parse_events
from core.settings import Settings, get_settings

from . import zones
from .bus import BrokerUnavailable, EventBus

log = logging.getLogger("aisle.stream.consumer")
CATCH_UP_EVERY_S = 1.0


Dead = list[tuple[bytes, str]]  # (the message or item as it came, the reason)


def _json_items(datas: list[bytes], dead: Dead) -> list[tuple[bytes, list[Any]]]:
    """Each message's items (a JSON object, or an array of them); what is not JSON is dead."""
    out = []
    for data in datas:
        try:
            payload = json.loads(data)
        except ValueError as exc:
            dead.append((data, f"not_json: {exc}"))
            continue
        out.append((data, payload if isinstance(payload, list) else [payload]))
    return out


def decode_events(datas: list[bytes]) -> tuple[list[Event], Dead]:
    """The events of a batch of messages (each a JSON event or array of events), and the dead
    letters with their reasons."""
    events: list[Event] = []
    dead: Dead = []
    for data, items in _json_items(datas, dead):
        if not all(isinstance(i, dict) for i in items):
            dead.append((data, "not_an_event: a message is an event object or an array of them"))
            continue
        good, bad = parse_events(items)
        events += good
        dead += [
            (json.dumps(items[b["index"]]).encode(), f"invalid_event: {b['error']}") for b in bad
        ]
    return events, dead


def decode_answers(datas: list[bytes]) -> tuple[list[dict[str, Any]], Dead]:
    """The answer-log records of a batch of messages, and the dead letters."""
    records: list[dict[str, Any]] = []
    dead: Dead = []
    for _, items in _json_items(datas, dead):
        for item in items:
            if isinstance(item, dict) and item.get("request_id") and item.get("at"):
                records.append(item)
            else:
                dead.append((json.dumps(item).encode(), "not_an_answer: request_id and at needed"))
    return records, dead


class ConsumerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter("aisle_stream_events", "Events written to the raw zone.", registry=r)
        self.online = Counter(
            "aisle_stream_online_rows", "Session rows written to the online store.", registry=r
        )
        self.answers = Counter("aisle_stream_answers", "Answers written to the log.", registry=r)
        self.dead = Counter(
            "aisle_stream_dead_letters", "Messages quarantined.", ["subject"], registry=r
        )
        self.backlog = Gauge(
            "aisle_stream_online_backlog", "Batches waiting for the online store.", registry=r
        )
        self.batch = Histogram(
            "aisle_stream_batch_seconds", "Time to write and acknowledge a batch.", registry=r
        )


class Consumer:
    """The writes of one consumer process; every disk and online-store call runs on one
    worker thread, one after another, so the broker's client keeps running meanwhile."""

    def __init__(self, settings: Settings) -> None:
        from ..sources import resolve

        self.settings = settings
        self.dataset = resolve(settings.interactions_source).dataset
        self.metrics = ConsumerMetrics()
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="stream-writes")
        self._sessions: Any = None

    async def run(self, fn, *args) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.worker, fn, *args)

    async def on_events(self, datas: list[bytes]) -> None:
        started = time.perf_counter()
        events, dead = decode_events(datas)
        if dead:
            await self.run(zones.write_dead_letters, self.settings, EVENTS_SUBJECT, dead)
            self.metrics.dead.labels(EVENTS_SUBJECT).inc(len(dead))
            log.warning("%d dead letter(s), e.g. %s", len(dead), dead[0][1])
        if events:
            await self.run(zones.write_raw_events, self.settings, self.dataset, events)
            self.metrics.events.inc(len(events))
            await self.run(self._to_online, events)
        self.metrics.batch.observe(time.perf_counter() - started)

    async def on_answers(self, datas: list[bytes]) -> None:
        records, dead = decode_answers(datas)
        if dead:
            await self.run(zones.write_dead_letters, self.settings, ANSWERS_SUBJECT, dead)
            self.metrics.dead.labels(ANSWERS_SUBJECT).inc(len(dead))
        if records:
            await self.run(zones.write_answers, self.settings, records)
            self.metrics.answers.inc(len(records))

    def _to_online(self, events: list[Event]) -> None:
        """Into the live sessions, or behind the backlog (durably) when that is not empty or the
        online store does not take them."""
        if not zones.backlog_files(self.settings):
            try:
                self.metrics.online.inc(self.sessions().apply(events))
                return
            except Exception as exc:  # the store's client errors differ per backend
                log.warning(
                    "online store did not take %d events (%s); backlogged", len(events), exc
                )
                self._sessions = None
        zones.write_backlog(self.settings, events)
        self.metrics.backlog.set(len(zones.backlog_files(self.settings)))

    def catch_up(self) -> int:
        """Replay the backlog into the online store, oldest first; stop at the first failure."""
        done = 0
        for path in zones.backlog_files(self.settings):
            try:
                self.metrics.online.inc(self.sessions().apply(zones.read_events(path)))
            except Exception as exc:
                log.info("online store still unavailable (%s); %s waits", exc, path.name)
                self._sessions = None
                break
            path.unlink()
            done += 1
        self.metrics.backlog.set(len(zones.backlog_files(self.settings)))
        if done:
            log.info("online store caught up with %d backlogged batch(es)", done)
        return done

    def sessions(self):
        from .session import SessionStore

        if self._sessions is None:
            self._sessions = SessionStore(self.settings)
        return self._sessions


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Consume until `stop` is set: connect (retrying while the broker is not up yet), take
    batches, replay the backlog every second, answer /healthz and /metrics."""
    from aiohttp import web

    from ..store import apply

    await asyncio.to_thread(apply, settings)  # the session view must be registered
    consumer = Consumer(settings)
    bus = EventBus(settings)
    bus.consume(EVENTS_SUBJECT, consumer.on_events)
    bus.consume(ANSWERS_SUBJECT, consumer.on_answers)
    while not stop.is_set():
        try:
            await bus.connect()
            break
        except BrokerUnavailable as exc:
            log.warning("%s; retrying", exc)
            await asyncio.sleep(1)
    await bus.start()
    log.info("consuming %s and %s from %s", EVENTS_SUBJECT, ANSWERS_SUBJECT, bus.url)

    app = web.Application()
    app.router.add_get("/healthz", lambda r: web.json_response({"ok": True, "broker": bus.url}))
    app.router.add_get("/metrics", lambda r: web.Response(
        body=generate_latest(consumer.metrics.registry), content_type="text/plain"))  # fmt: skip
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.serving_host, settings.events.consumer_port).start()
    try:
        while not stop.is_set():
            if zones.backlog_files(settings):
                await consumer.run(consumer.catch_up)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CATCH_UP_EVERY_S)
    finally:
        await bus.close()
        await runner.cleanup()
        consumer.worker.shutdown(wait=True)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = get_settings()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    asyncio.run(run())
