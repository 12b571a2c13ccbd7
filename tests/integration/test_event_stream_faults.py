"""The event stream's faults, on the real broker (the stack's NATS server), the real consumer and
the gateway, as processes under the stack's supervisor: a broker that stops (and comes back on
its store), a consumer killed mid-batch, an online store that does not answer, a malformed
message. Nothing accepted is lost, nothing is counted twice (the raw zone through the ETL), and
the online store catches up. A broker that crashes and is restarted by the supervisor:
benchmarks/events.py."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pyarrow.parquet as pq
import pytest

from core.settings import get_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]
KEY = "stream-key-" + secrets.token_hex(4)


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    from aisle.stack import stop, up_event_stream
    from serving.cluster import down, start_gateway

    settings = get_settings(
        data_dir=tmp_path_factory.mktemp("stream") / "data",
        gateway_port=28700,
        slot_port_base=28710,
        api_keys=[KEY],
        admin_token=secrets.token_hex(16),
        events={"broker_port": 28730, "consumer_port": 28732, "publish_timeout_s": 1.0},
    )
    try:
        settings = up_event_stream(settings)
        start_gateway(settings)
        assert Sender(settings).send([event("probe")], retry_s=30) == 202
        yield settings
    finally:
        down(settings)
        for name in ("supervisor", "events-consumer", "events-broker"):
            stop(settings, name)


def event(user: str, item: str = "item-1") -> dict:
    return {
        "event_id": uuid.uuid4().hex,
        "user_id": user,
        "item_id": item,
        "timestamp": datetime.now(UTC).isoformat(),
        "event_type": "view",
    }


class Sender:
    """A shop's sender: posts batches to /events and, on a 503, waits its Retry-After and sends
    the same batch again (the same event ids)."""

    def __init__(self, settings) -> None:
        self.client = httpx.Client(
            base_url=settings.gateway_url, headers={"X-API-Key": KEY}, timeout=10
        )
        self.accepted: set[str] = set()
        self.unavailable = 0
        self.retry_after: set[str] = set()

    def send(self, batch: list[dict], retry_s: float = 120) -> int:
        deadline = time.monotonic() + retry_s
        while True:
            try:
                answer = self.client.post("/events", json=batch)
            except httpx.HTTPError:
                answer = None
            if answer is not None and answer.status_code == 202:
                self.accepted |= {e["event_id"] for e in batch}
                return 202
            if answer is not None and answer.status_code == 503:
                self.unavailable += 1
                self.retry_after.add(answer.headers.get("Retry-After", ""))
            if time.monotonic() > deadline:
                return answer.status_code if answer is not None else 0
            time.sleep(0.2)

    def stream_for(self, seconds: float, user: str, per_batch: int = 20) -> threading.Thread:
        def run() -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                self.send([event(user, f"item-{n % 7}") for n in range(per_batch)])
                time.sleep(0.05)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


def raw_event_ids(settings) -> list[str]:
    files = settings.raw_dir.glob("*/interactions/stream/date=*/*.parquet")
    return [e for f in files for e in pq.read_table(f)["event_id"].to_pylist()]


def wait_for(check, timeout_s: float, every_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while not (found := check()) and time.monotonic() < deadline:
        time.sleep(every_s)
    return found


def curate_today(settings):
    """The ETL over today's stream partition: the curated event ids and the run's summary."""
    from features.etl import CURATED_FILE, run_etl
    from features.sources import resolve
    from features.storage import Interval, partition_dir

    dataset = resolve(settings.interactions_source).dataset
    today = datetime.now(UTC).date()
    summary = run_etl(
        settings, dataset, "interactions", Interval.parse(today, today + timedelta(1))
    )
    curated = partition_dir(settings.curated_dir, dataset, "interactions", today) / CURATED_FILE
    return pq.read_table(curated)["event_id"].to_pylist(), summary


def kill(settings, component: str) -> int:
    from aisle.stack import running

    pid = running(settings, component)
    assert pid, f"{component} is not running"
    os.kill(pid, signal.SIGKILL)
    return pid


def restarted(settings, component: str, old_pid: int, timeout_s: float = 60) -> bool:
    from aisle.stack import running

    return bool(wait_for(lambda: running(settings, component) not in (None, old_pid), timeout_s))


def assert_each_accepted_event_curated_once(settings, sender: Sender) -> None:
    assert wait_for(lambda: sender.accepted <= set(raw_event_ids(settings)), 60), (
        f"{len(sender.accepted - set(raw_event_ids(settings)))} accepted events never landed"
    )
    curated, summary = curate_today(settings)
    assert summary.reconciles
    assert len(curated) == len(set(curated)), "an event was curated twice"
    assert sender.accepted <= set(curated)


def test_a_stopped_broker_is_a_503_with_retry_after_and_nothing_accepted_is_lost(stream):
    from aisle.stack import stop, up_event_stream

    sender = Sender(stream)
    thread = sender.stream_for(20, "shopper-broker")
    assert wait_for(lambda: len(sender.accepted) >= 100, 10, every_s=0.1)  # the stream flows
    stop(stream, "events-broker")  # on purpose: the supervisor leaves it down
    try:
        assert wait_for(lambda: sender.unavailable > 0, 15, every_s=0.1), (
            "the gateway never answered 503 while the broker was down"
        )
    finally:
        up_event_stream(stream)  # the broker again, on its store
    thread.join()
    assert sender.retry_after == {"1"}
    assert len(sender.accepted) >= 200
    assert_each_accepted_event_curated_once(stream, sender)


def test_a_consumer_killed_mid_batch_is_restarted_and_counts_reconcile(stream):
    sender = Sender(stream)
    thread = sender.stream_for(15, "shopper-consumer", per_batch=50)
    assert wait_for(lambda: len(sender.accepted) >= 500, 10, every_s=0.1)  # the stream flows
    pid = kill(stream, "events-consumer")
    assert restarted(stream, "events-consumer", pid), "the supervisor did not restart it"
    thread.join()
    assert sender.unavailable == 0  # the broker held the events while no one consumed them
    assert_each_accepted_event_curated_once(stream, sender)


def test_while_the_online_store_is_down_events_land_and_sessions_catch_up(stream):
    from features.online import OnlineLookup
    from features.stream.session import live_sessions
    from features.stream.zones import backlog_files

    user = "shopper-" + uuid.uuid4().hex[:8]
    lookup = OnlineLookup(stream, "user_session_fv")
    lock = sqlite3.connect(stream.data_dir / "feast" / "online_store.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # no one else writes (or reads) the online store now
    try:
        sender = Sender(stream)
        batch = [event(user, f"item-{n}") for n in range(5)]
        assert sender.send(batch, retry_s=10) == 202
        ids = {e["event_id"] for e in batch}
        assert wait_for(lambda: ids <= set(raw_event_ids(stream)), 15), "not in the raw zone"
        assert wait_for(lambda: backlog_files(stream), 30), "the batch was not backlogged"
    finally:
        lock.execute("ROLLBACK")
        lock.close()

    def caught_up():
        session = live_sessions(lookup, [user])[0]
        return session is not None and ids <= set(session["event_ids"])

    assert wait_for(caught_up, 30), "the online store did not catch up"
    assert wait_for(lambda: not backlog_files(stream), 10)
    assert live_sessions(lookup, [user])[0]["session_item_ids"][0] == "item-4"


def test_a_malformed_message_on_the_broker_becomes_a_dead_letter_with_its_reason(stream):
    from core.events import EVENTS_SUBJECT
    from features.stream.bus import EventBus
    from features.stream.zones import dead_letter_dir

    marker = uuid.uuid4().hex
    missing_item = {k: v for k, v in event("shopper-" + marker).items() if k != "item_id"}

    async def publish() -> None:
        bus = EventBus(stream)
        await bus.connect()
        try:
            await bus.publish(EVENTS_SUBJECT, f"not json {marker}".encode())
            await bus.publish(EVENTS_SUBJECT, json.dumps([missing_item]).encode())
        finally:
            await bus.close()

    asyncio.run(publish())
    folder = dead_letter_dir(stream, EVENTS_SUBJECT, datetime.now(UTC).date().isoformat())

    def letters():
        rows = [r for f in folder.glob("*.parquet") for r in pq.read_table(f).to_pylist()]
        return {r["reason"]: r for r in rows if marker in r["raw"]} if rows else None

    found = wait_for(lambda: (f := letters()) and len(f) == 2 and f, 20)
    assert found, f"no dead letters in {folder}"
    assert found["invalid_event"]["reasons"] == "invalid_event: item_id: Field required"
    assert found["not_json"]["raw"] == f"not json {marker}"
