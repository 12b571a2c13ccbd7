"""The event stream end to end: POST /events -> broker -> consumer -> online store and raw zone.

The real pieces as processes, on private loopback ports, in a temporary data folder: the
gateway (`serving.cluster.start_gateway`, port 38700), the stack's own NATS JetStream server
(`events-broker`, 38730) and the consumer (`events-consumer`, /metrics on 38732), under the stack's
supervisor (`aisle.stack.up_event_stream`), as tests/integration/test_event_stream_faults.py
starts them. Shoppers are 5,000 simulated users over a catalogue of 1,000 items (80 % views,
15 % add-to-cart, 5 % purchases with a price); every POST carries 50 events. In one run:

    sustained   1 client, then 8 concurrent clients (threads, one httpx.Client each), each posting
                as fast as its 202s come back for `--seconds` (20), but holding back while more
                than `--lag` (25,000) accepted events are not in the raw zone yet: the gateway
                takes events ~2-3x faster than the consumer lands them, and without a bound the
                broker's backlog from 20 s of sending takes a minute or more to drain. Accepted
                is not landed: the figure is events / (the moment the last one was in BOTH the
                raw zone and the online store - the first POST). "In the raw zone": every
                accepted id is in the stream partition's files; "in the online store": no batch
                waits in the consumer's backlog and each client's last batch is in its users'
                `live_sessions(...)["event_ids"]` (the consumer writes raw, then online, one
                batch after another). Afterwards every event of the phase is checked in its
                user's session (untimed). Draining is capped at `--drain` (90 s) per phase.
    latency     background load at half the best sustained rate (2 paced clients) and 24 probe
                threads, each posting one event for a fresh probe user and waiting until it is
                seen; one poller thread reads `live_sessions` for every pending probe with one
                prebuilt `OnlineLookup(settings, "user_session_fv")` every 10 ms, and lists the
                day's stream partition for new files (reading their event ids).
                Click-to-feature = POST sent -> the id in the session; raw landing lag = POST
                sent -> the file holding the id seen by the poller (also from the file's mtime:
                the write, before its fsync and rename). At least `--probes` (200) probes, or
                `--latency-cap` (45) s; a probe not seen in 10 s counts as 10 s. Then again
                (for half as long at most) with the background at the target's 2,000 events/s
                and at 500 events/s, where half the best is more.
    faults      4 paced clients at half the best sustained rate: the consumer is killed with
                SIGKILL 5 s in; the broker (nats-server) at least 10 s after the consumer answers
                again, just after one of the supervisor's looks (every 5 s, timed from the
                consumer's restart), so it stays down ~4.5 s; the supervisor restarts both.
                Sending goes on for `--fault-seconds` (40) and at least 5 s after the broker is
                back. Senders retry a 503 after its Retry-After (1 s), a failed connection after
                0.2 s, with the same batch: the same event ids. Then every accepted event of the
                phase is awaited in the raw zone and in its user's session.
    reconcile   the stack stopped, the ETL (`features.etl.run_etl`, as the fault test runs it)
                over the run's days of the stream partition: by event_id, every event accepted
                in the whole run vs curated + quarantined; lost = accepted and never curated,
                doubled = curated more than once.
    floor       in this process, in fresh data folders, the consumer's steps on the 1-client
                phase's very events, timed one by one: decoding the broker's messages (one per
                POST), the raw-zone write (`zones.write_raw_events`) and the online write
                (`SessionStore(settings).apply`, split into its reads, its write (the one
                behind Feast's push) and the merge), in batches of 50 (one POST) and of the
                consumer's mean batch in the 8-client phase, each for up to `--floor-seconds`
                (10). The floor is the faster online write; the stream's best rate is reported
                as a ratio of it (and of the 50-event one). And the online write per session
                row by what the row holds: the same batches into 1,000 users never seen and
                into 1,000 users holding KEEP_EVENTS (100) events (the most a session keeps),
                as returning shoppers' sessions come to.

Targets: >= 2,000 events/s sustained, click-to-feature p99 <= 1 s, 0 lost, 0 doubled. Everything
shares the 2 cores (clients, gateway, broker, consumer, poller): figures move between runs.
Processes are stopped and the data folder removed at the end, on failure too.

    .venv/bin/python benchmarks/events.py [--seconds 20] [--probes 200] [--keep-data]

Results: benchmarks/results/events.{json,md}. About 5 minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

# The project root first, not benchmarks/: benchmarks/serving.py would shadow the serving package.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from benchmarks.common import RESULTS, machine, percentile, write_results  # noqa: E402

GATEWAY_PORT, SLOT_PORT_BASE, BROKER_PORT, CONSUMER_PORT = 38700, 38710, 38730, 38732
KEY = "bench-events-" + secrets.token_hex(4)
TARGETS = {"events_per_s": 2000.0, "p99_ms": 1000.0, "lost": 0, "doubled": 0}
PROBE_THREADS = 24
PROBE_TIMEOUT_S = 10.0
POLL_S = 0.010
FLOOR_EVENTS = 250_000  # of the 1-client phase, kept for the floor


# --------------------------------------------------------------------------- the shop's side


def make_event(rng: random.Random, user: str, item: str) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": uuid.uuid4().hex,  # never from the seeded draws: unique across phases
        "user_id": user,
        "item_id": item,
        "timestamp": datetime.now(UTC).isoformat(),
        "event_type": "view",
    }
    draw = rng.random()
    if draw > 0.95:
        event.update(event_type="purchase", price=round(rng.uniform(1, 100), 2), quantity=1)
    elif draw > 0.80:
        event["event_type"] = "add_to_cart"
    return event


class Sender:
    """One shop client: posts a batch to /events; on a 503 (or no answer) waits its Retry-After
    and sends the same batch again (the same event ids)."""

    def __init__(self, settings: Any, keep_events: int = 0) -> None:
        self.client = httpx.Client(
            base_url=settings.gateway_url, headers={"X-API-Key": KEY}, timeout=10
        )
        self.accepted: list[str] = []
        self.pairs: list[tuple[str, str]] = []  # (user, event id) of each accepted event
        self.keep_events = keep_events  # the first so many accepted events, whole
        self.events: list[dict[str, Any]] = []
        self.post_ms: list[float] = []  # from the first try to the 202, retries included
        self.unavailable = 0  # 503s
        self.no_answer = 0  # connection refused / reset / timed out
        self.rejected = 0
        self.gave_up: list[str] = []  # ids of batches never accepted within retry_s

    def send(self, batch: list[dict[str, Any]], retry_s: float = 120.0) -> bool:
        started = time.perf_counter()
        while True:
            try:
                answer = self.client.post("/events", json=batch)
            except httpx.HTTPError:
                answer = None
                self.no_answer += 1
            if answer is not None and answer.status_code == 202:
                self.rejected += len(answer.json()["rejected"])
                self.accepted += [e["event_id"] for e in batch]
                self.pairs += [(e["user_id"], e["event_id"]) for e in batch]
                if len(self.events) < self.keep_events:
                    self.events += batch
                self.post_ms.append((time.perf_counter() - started) * 1000)
                return True
            wait = 0.2
            if answer is not None and answer.status_code == 503:
                self.unavailable += 1
                wait = float(answer.headers.get("Retry-After", "1"))
            elif answer is not None:
                raise RuntimeError(f"/events answered {answer.status_code}: {answer.text[:300]}")
            if time.perf_counter() - started > retry_s:
                self.gave_up += [e["event_id"] for e in batch]
                return False
            time.sleep(wait)

    def close(self) -> None:
        self.client.close()


def run_clients(
    settings: Any,
    clients: int,
    seconds: float,
    users: list[str],
    items: list[str],
    batch: int,
    seed: int,
    rate: float | None = None,
    keep_events: int = 0,
    end_at: list[float] | None = None,
    hold: Any = None,
) -> tuple[list[Sender], list[list[dict]], list[threading.Thread], list[float]]:
    """Start `clients` threads posting batches for `seconds` (closed loop, or paced to `rate`
    events/s in all); `end_at[0]` may be moved later while they run; a client waits while
    `hold(senders)` is true."""
    senders = [Sender(settings, keep_events) for _ in range(clients)]
    last: list[list[dict]] = [[] for _ in range(clients)]
    start = time.perf_counter()
    end = end_at if end_at is not None else [0.0]
    if not end[0]:
        end[0] = start + seconds

    def run(i: int) -> None:
        rng = random.Random(seed * 1000 + i)
        every = clients * batch / rate if rate else 0.0
        due = start + i * every / clients
        while time.perf_counter() < end[0]:
            while hold is not None and hold(senders) and time.perf_counter() < end[0]:
                time.sleep(0.01)
            if every:
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                due += every
            events = [
                make_event(rng, users[rng.randrange(len(users))], items[rng.randrange(len(items))])
                for _ in range(batch)
            ]
            if senders[i].send(events):
                last[i] = events

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    return senders, last, threads, [start]


# --------------------------------------------------------------------------- what landed


class RawZone:
    """The stream partition's files, each read once (its event ids): how often each id landed."""

    def __init__(self, settings: Any) -> None:
        self.root = settings.raw_dir
        self.read: set[str] = set()
        self.count: Counter = Counter()
        self.rows = 0

    def refresh(self) -> RawZone:
        for day in self.root.glob("*/interactions/stream/date=*"):
            with os.scandir(day) as entries:
                fresh = [
                    e.path
                    for e in entries
                    if e.name.endswith(".parquet")
                    and not e.name.startswith(".")
                    and e.path not in self.read
                ]
            for path in sorted(fresh):
                ids = event_ids(Path(path))
                self.count.update(ids)
                self.rows += len(ids)
                self.read.add(path)
        return self

    def missing(self, wanted: set[str]) -> set[str]:
        """Of `wanted`, the ids not landed yet."""
        self.refresh()
        return {i for i in wanted if i not in self.count}


def event_ids(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=["event_id"])["event_id"].to_pylist()


def consumer_metrics() -> dict[str, float]:
    try:
        text = httpx.get(f"http://127.0.0.1:{CONSUMER_PORT}/metrics", timeout=2).text
    except httpx.HTTPError:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[name] = float(value)
    return out


def metrics_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    def d(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    batches = d("aisle_stream_batch_seconds_count")
    events = d("aisle_stream_events_total")
    busy = d("aisle_stream_batch_seconds_sum")
    return {
        "batches": int(batches),
        "events": int(events),
        "online_rows": int(d("aisle_stream_online_rows_total")),
        "ms_per_online_row": busy / d("aisle_stream_online_rows_total") * 1000
        if d("aisle_stream_online_rows_total")
        else None,
        "events_per_batch": events / batches if batches else None,
        "batch_ms_mean": busy / batches * 1000 if batches else None,
        "busy_s": busy,
        "events_per_busy_s": events / busy if busy else None,
    }


def by_user(pairs: list[tuple[str, str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for user, event_id in pairs:
        out.setdefault(user, set()).add(event_id)
    return out


def missing_online(lookup: Any, ids_by_user: dict[str, set[str]], chunk: int = 500) -> int:
    """Events not (yet) in their user's live session."""
    from features.stream.session import live_sessions

    users = list(ids_by_user)
    missing = 0
    for n in range(0, len(users), chunk):
        part = users[n : n + chunk]
        for user, session in zip(part, live_sessions(lookup, part), strict=True):
            have = set(session["event_ids"]) if session else set()
            missing += len(ids_by_user[user] - have)
    return missing


def wait_for(check, timeout_s: float, every_s: float = 0.05) -> float | None:
    """perf_counter() when `check()` first held, None after timeout_s."""
    deadline = time.perf_counter() + timeout_s
    while True:
        if check():
            return time.perf_counter()
        if time.perf_counter() > deadline:
            return None
        time.sleep(every_s)


# --------------------------------------------------------------------------- phases


def sustained(ctx: Ctx, clients: int, keep_events: int = 0) -> dict[str, Any]:
    """`clients` closed-loop clients for `--seconds`, held back while more than `--lag` accepted
    events are not in the raw zone yet; events/s = all of them over first POST -> last landed."""
    from features.stream.zones import backlog_files

    args = ctx.args
    from features.stream.session import KEEP_EVENTS

    history = min(KEEP_EVENTS, len(ctx.accepted) / len(ctx.users))  # what a session keeps
    rows0, m0 = ctx.raw.refresh().rows, consumer_metrics()
    landed_rows = [0]

    def hold(senders: list[Sender]) -> bool:
        return sum(len(s.accepted) for s in senders) - landed_rows[0] > args.lag

    stop = threading.Event()

    def watch() -> None:  # the raw zone, every 50 ms, for `hold`
        while not stop.is_set():
            landed_rows[0] = ctx.raw.refresh().rows - rows0
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    senders, last, threads, (start,) = run_clients(
        ctx.settings, clients, args.seconds, ctx.users, ctx.items, args.batch, clients, None,
        keep_events, hold=hold,
    )  # fmt: skip
    for t in threads:
        t.join()
    sent_end = time.perf_counter()
    stop.set()
    watcher.join()
    ids = [i for s in senders for i in s.accepted]
    accepted = len(ids)
    ctx.accepted += ids
    final = by_user([(e["user_id"], e["event_id"]) for batch in last for e in batch])
    pending = [set(ids)]
    raw_at: list[float] = []

    def landed() -> bool:
        if not raw_at:
            pending[0] = ctx.raw.missing(pending[0])
            if pending[0]:
                return False
            raw_at.append(time.perf_counter())
        return not backlog_files(ctx.settings) and missing_online(ctx.lookup, final) == 0

    landed_at = wait_for(landed, args.drain)
    m1 = consumer_metrics()
    ctx.raw.refresh()
    rows_landed = ctx.raw.rows - rows0
    if landed_at is None:  # the next phase must not start behind a backlog: wait, untimed
        wait_for(lambda: not ctx.raw.missing(pending[0]), 180, 0.5)
    post_ms = [v for s in senders for v in s.post_ms]
    phase_missing = missing_online(ctx.lookup, by_user([x for s in senders for x in s.pairs]))
    row = {
        "clients": clients,
        "send_s": sent_end - start,
        "posts": len(post_ms),
        "accepted": accepted,
        "accepted_per_s": accepted / (sent_end - start),
        "drained": landed_at is not None,
        "raw_complete_s": (raw_at[0] - start) if raw_at else None,
        "landed_s": (landed_at - start) if landed_at else None,
        "drain_s": (landed_at - sent_end) if landed_at else None,
        # all accepted events over first POST -> the last one in both stores; when draining ran
        # out of time, the raw rows by then over the time taken (an upper bound)
        "events_per_s": accepted / (landed_at - start)
        if landed_at
        else rows_landed / (time.perf_counter() - start),
        "post_p50_ms": percentile(post_ms, 50),
        "post_p99_ms": percentile(post_ms, 99),
        "unavailable_503": sum(s.unavailable for s in senders),
        "rejected": sum(s.rejected for s in senders),
        "raw_rows_written_twice": sum(ctx.raw.count[i] - 1 for i in ids if ctx.raw.count[i] > 1),
        "online_missing_after": phase_missing,
        "events_per_user_before": history,
        "consumer": metrics_delta(m0, m1),
    }
    row["consumer"]["busy_share"] = row["consumer"]["busy_s"] / (time.perf_counter() - start)
    if keep_events:
        ctx.floor_events = [e for s in senders for e in s.events]
    for s in senders:
        s.close()
    print(
        f"  {clients} client(s): accepted {accepted} ({row['accepted_per_s']:.0f}/s), "
        f"landed {row['events_per_s']:.0f}/s, drain {row['drain_s']}, "
        f"written twice {row['raw_rows_written_twice']}",
        flush=True,
    )
    return row


@dataclass
class Probe:
    user: str
    event_id: str
    sent: float  # perf_counter before the POST
    sent_wall: float
    raw_at: float | None = None
    online_at: float | None = None
    raw_file: Path | None = None
    done: threading.Event = field(default_factory=threading.Event)


def latency(ctx: Ctx, rate: float, cap_s: float) -> dict[str, Any]:
    """Click-to-feature and raw landing lag under paced background load."""
    from features.stream.session import live_sessions

    args = ctx.args
    today = ctx.raw.root / ctx.dataset / "interactions" / "stream"
    pending: dict[str, Probe] = {}
    finished: list[Probe] = []
    lock = threading.Lock()
    stop = threading.Event()
    seen_files: set[str] = set()
    poll_errors: list[str] = []

    def new_files() -> list[Path]:
        out = []
        for day in today.glob("date=*"):
            with os.scandir(day) as entries:
                for e in entries:
                    fresh = e.name not in seen_files and not e.name.startswith(".")
                    if fresh and e.name.endswith(".parquet"):
                        seen_files.add(e.name)
                        out.append(Path(e.path))
        return out

    new_files()  # what is there already is not a probe's

    def poller() -> None:
        import pyarrow.parquet as pq

        while not stop.is_set():
            tick = time.perf_counter()
            with lock:
                waiting = list(pending.values())
            try:
                if any(p.raw_at is None for p in waiting):
                    by_id = {p.event_id: p for p in waiting if p.raw_at is None}
                    for path in new_files():
                        ids = pq.read_table(path, columns=["event_id"])["event_id"].to_pylist()
                        now = time.perf_counter()
                        for i in ids:
                            if i in by_id:
                                by_id[i].raw_at, by_id[i].raw_file = now, path
                else:
                    new_files()
                online = [p for p in waiting if p.online_at is None]
                if online:
                    sessions = live_sessions(ctx.lookup, [p.user for p in online])
                    now = time.perf_counter()
                    for p, s in zip(online, sessions, strict=True):
                        if s and p.event_id in s["event_ids"]:
                            p.online_at = now
            except Exception as exc:  # a read that lost a race with a writer: note it, go on
                poll_errors.append(repr(exc)[:200])
            for p in waiting:
                if p.raw_at is not None and p.online_at is not None:
                    p.done.set()
            time.sleep(max(0.0, POLL_S - (time.perf_counter() - tick)))

    def prober(n: int) -> None:
        sender = Sender(ctx.settings)
        rng = random.Random(9000 + n)
        while len(finished) < args.probes and time.perf_counter() < deadline:
            user = f"probe-{uuid.uuid4().hex[:16]}"
            event = make_event(rng, user, ctx.items[rng.randrange(len(ctx.items))])
            probe = Probe(user, event["event_id"], time.perf_counter(), time.time())
            with lock:
                pending[user] = probe
            if sender.send([event], retry_s=PROBE_TIMEOUT_S):
                ctx.accepted.append(event["event_id"])
                probe.done.wait(PROBE_TIMEOUT_S)
            with lock:
                del pending[user]
                finished.append(probe)
            time.sleep(rng.uniform(0, 0.05))
        sender.close()

    from features.stream.session import KEEP_EVENTS

    history = min(KEEP_EVENTS, len(ctx.accepted) / len(ctx.users))
    m0 = consumer_metrics()
    end_at = [0.0]
    senders, _, bg_threads, (start,) = run_clients(
        ctx.settings, 2, cap_s + 30, ctx.users, ctx.items, args.batch, 77, rate,
        end_at=end_at,
    )  # fmt: skip
    time.sleep(2)  # the background load settles
    deadline = time.perf_counter() + cap_s
    watcher = threading.Thread(target=poller, daemon=True)
    watcher.start()
    probes = [threading.Thread(target=prober, args=(n,), daemon=True) for n in range(PROBE_THREADS)]
    for t in probes:
        t.start()
    for t in probes:
        t.join()
    end_at[0] = time.perf_counter()  # the background stops with the probes
    for t in bg_threads:
        t.join()
    stop.set()
    watcher.join()
    elapsed = time.perf_counter() - start
    m1 = consumer_metrics()
    background = sum(len(s.accepted) for s in senders)
    ctx.accepted += [i for s in senders for i in s.accepted]
    for s in senders:
        s.close()

    online_ms = [(p.online_at - p.sent) * 1000 for p in finished if p.online_at]
    raw_ms = [(p.raw_at - p.sent) * 1000 for p in finished if p.raw_at]
    mtime_ms = [
        (p.raw_file.stat().st_mtime - p.sent_wall) * 1000
        for p in finished
        if p.raw_file is not None and p.raw_file.exists()
    ]
    late = sum(1 for p in finished if p.online_at is None)
    # a probe that never showed counts at the timeout, so it cannot flatter the percentiles
    scored = online_ms + [PROBE_TIMEOUT_S * 1000] * late
    row = {
        "probes": len(finished),
        "not_visible_in_10s": late,
        "background_target_per_s": rate,
        "background_events_per_s": background / elapsed,
        "p50_ms": percentile(scored, 50),
        "p99_ms": percentile(scored, 99),
        "max_ms": max(scored),
        "raw_landing_p50_ms": percentile(raw_ms, 50) if raw_ms else None,
        "raw_landing_p99_ms": percentile(raw_ms, 99) if raw_ms else None,
        "raw_landing_mtime_p50_ms": percentile(mtime_ms, 50) if mtime_ms else None,
        "raw_landing_mtime_p99_ms": percentile(mtime_ms, 99) if mtime_ms else None,
        "events_per_user_before": history,
        "poll_errors": len(poll_errors),
        "poll_error_example": poll_errors[0] if poll_errors else None,
        "consumer": metrics_delta(m0, m1),
    }
    row["consumer"]["busy_share"] = row["consumer"]["busy_s"] / elapsed
    print(
        f"  {row['probes']} probes at {row['background_events_per_s']:.0f} events/s background: "
        f"click-to-feature p50 {row['p50_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms; raw p50 "
        f"{row['raw_landing_p50_ms']} ms",
        flush=True,
    )
    return row


def faults(ctx: Ctx, rate: float) -> dict[str, Any]:
    """Kill -9 the consumer, then the broker, while 4 clients send; the supervisor restarts."""
    from aisle.stack import running

    args = ctx.args
    end_at = [float("inf")]  # until both faults are over, and 5 s more
    senders, _, threads, (start,) = run_clients(
        ctx.settings, 4, args.fault_seconds, ctx.users, ctx.items, args.batch, 55, rate,
        end_at=end_at,
    )  # fmt: skip
    timeline: dict[str, float | None] = {}

    def since() -> float:
        return round(time.perf_counter() - start, 2)

    def kill_and_wait(component: str, health: str) -> tuple[float, float]:
        """When the supervisor restarted it (seen within 0.1 s) and when it answered."""
        pid = running(ctx.settings, component)
        if not pid:
            raise RuntimeError(f"{component} is not running")
        os.kill(pid, signal.SIGKILL)
        timeline[f"{component}_killed_at_s"] = since()
        back = wait_for(lambda: running(ctx.settings, component) not in (None, pid), 60, 0.1)
        timeline[f"{component}_restarted_at_s"] = (back - start) if back else None
        healthy = wait_for(lambda: _ok(health), 60, 0.1)
        timeline[f"{component}_healthy_at_s"] = (healthy - start) if healthy else None
        if back is None or healthy is None:
            raise RuntimeError(f"the supervisor did not bring {component} back in 60 s")
        return back, healthy

    time.sleep(5)
    back, healthy = kill_and_wait("events-consumer", f"http://127.0.0.1:{CONSUMER_PORT}/healthz")
    # The supervisor looks every 5 s and had just looked when it restarted the consumer at
    # `back`: the broker dies just after a later look, at least 10 s after the consumer answers
    # again, so it stays down for most of a cycle (~4.5 s; a crash at a random moment waits
    # 2.5 s on average) and the gateway's 503 path is exercised
    checks = 2
    while back + 5 * checks + 0.4 < healthy + 10:
        checks += 1
    time.sleep(max(0.0, back + 5 * checks + 0.4 - time.perf_counter()))
    kill_and_wait("events-broker", f"http://127.0.0.1:{BROKER_PORT + 1}/healthz")
    end_at[0] = max(start + args.fault_seconds, time.perf_counter() + 5)
    for t in threads:
        t.join()
    sent_end = time.perf_counter()
    accepted = [i for s in senders for i in s.accepted]
    gave_up = [i for s in senders for i in s.gave_up]
    ctx.accepted += accepted
    ctx.gave_up += gave_up
    wanted = set(accepted)
    pending = [wanted]

    def in_raw() -> bool:
        pending[0] = ctx.raw.missing(pending[0])
        return not pending[0]

    in_raw_at = wait_for(in_raw, args.drain * 1.5, 0.5)
    raw = ctx.raw.count
    phase = by_user([x for s in senders for x in s.pairs])
    online_at = wait_for(lambda: missing_online(ctx.lookup, phase) == 0, 30, 0.5)
    post_ms = [v for s in senders for v in s.post_ms]
    row = {
        "clients": 4,
        "rate_target_per_s": rate,
        "send_s": sent_end - start,
        "accepted": len(accepted),
        "gave_up": len(gave_up),
        "unavailable_503": sum(s.unavailable for s in senders),
        "no_answer": sum(s.no_answer for s in senders),
        "post_p99_ms": percentile(post_ms, 99),
        "post_max_ms": max(post_ms),
        "all_in_raw_after_s": (in_raw_at - sent_end) if in_raw_at else None,
        "not_in_raw": len(pending[0]),
        "all_online_after_s": (online_at - sent_end) if online_at else None,
        "online_missing": missing_online(ctx.lookup, phase),
        "raw_rows_redelivered": sum(raw[i] - 1 for i in wanted if raw[i] > 1),
        **timeline,
    }
    for s in senders:
        s.close()
    print(f"  faults: {row}", flush=True)
    return row


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def reconcile(ctx: Ctx) -> dict[str, Any]:
    """The ETL over the run's days of the stream partition; accepted vs curated, by event_id."""
    import pyarrow.parquet as pq

    from features.etl import run_etl
    from features.storage import Interval

    days = sorted(
        p.name.removeprefix("date=")
        for p in (ctx.raw.root / ctx.dataset / "interactions" / "stream").glob("date=*")
    )
    first, last = datetime.fromisoformat(days[0]).date(), datetime.fromisoformat(days[-1]).date()
    started = time.perf_counter()
    summary = run_etl(
        ctx.settings, ctx.dataset, "interactions", Interval.parse(first, last + timedelta(1))
    )
    etl_s = time.perf_counter() - started
    curated: Counter = Counter()
    for day in summary.curated_partitions:
        path = Path(day)
        if path.exists():
            curated.update(pq.read_table(path, columns=["event_id"])["event_id"].to_pylist())
    quarantined: set[str] = set()
    qfile = Path(summary.quarantine_file)
    if qfile.exists() and "event_id" in pq.read_schema(qfile).names:
        quarantined = set(pq.read_table(qfile, columns=["event_id"])["event_id"].to_pylist())
    accepted = set(ctx.accepted)
    row = {
        "accepted": len(accepted),
        "accepted_posts_duplicate_ids": len(ctx.accepted) - len(accepted),
        "curated": sum(curated.values()),
        "curated_distinct": len(curated),
        "quarantined": summary.quarantined,
        "accepted_quarantined": len(accepted & quarantined),
        "duplicates_dropped_by_etl": summary.duplicates,
        "rows_in": summary.rows_in,
        "reconciles": summary.reconciles,
        "lost": len(accepted - set(curated)),
        "doubled": sum(1 for i, n in curated.items() if n > 1),
        "curated_not_acknowledged": len(set(curated) - accepted),
        "gave_up_then_curated": len(set(ctx.gave_up) & set(curated)),
        "etl_s": etl_s,
    }
    print(f"  reconcile: {row}", flush=True)
    return row


def instrument(sessions: Any) -> dict[str, float]:
    """Time a SessionStore's reads and its Feast push: seconds spent in each, summed."""
    spent = {"lookup": 0.0, "push": 0.0}

    def timed(name: str, call: Any) -> Any:
        def run(*a: Any, **k: Any) -> Any:
            started = time.perf_counter()
            try:
                return call(*a, **k)
            finally:
                spent[name] += time.perf_counter() - started

        return run

    sessions.lookup = timed("lookup", sessions.lookup)
    sessions.write = timed("push", sessions.write)  # the write behind Feast's push
    return spent


def history_cost(ctx: Ctx, users: int = 1000, batch: int = 4000, batches: int = 4) -> dict:
    """The online write per user row by how much the row holds: the same batches (`batch`
    events over `users` users) into users never seen and into users whose sessions already hold
    the most a session keeps (KEEP_EVENTS), in a fresh store, in process."""
    from core.events import Event
    from core.settings import get_settings
    from features import store
    from features.stream.session import KEEP_EVENTS, SessionStore

    settings = get_settings(data_dir=ctx.tmp / "floor-history" / "data")
    store.apply(settings)
    sessions = SessionStore(settings)
    rng = random.Random(11)
    now = datetime.now(UTC)

    def event(user: str, at: datetime) -> Event:
        item = ctx.items[rng.randrange(len(ctx.items))]
        return Event(
            event_id=uuid.uuid4().hex, user_id=user, item_id=item, timestamp=at, event_type="view"
        )

    for half in range(2):  # every "full-" user gets KEEP_EVENTS events over the last 20 minutes
        sessions.apply(
            [
                event(f"full-{u}", now - timedelta(seconds=1200 - 6 * (half * 100 + k)))
                for k in range(KEEP_EVENTS // 2)
                for u in range(users)
            ]
        )
    spent = instrument(sessions)
    out: dict[str, Any] = {"users": users, "events_per_batch": batch, "held_events": KEEP_EVENTS}
    for kind in ("fresh", "full"):
        spent.update(lookup=0.0, push=0.0)
        took, rows = 0.0, 0
        for _ in range(batches):
            b = [event(f"{kind}-{rng.randrange(users)}", datetime.now(UTC)) for _ in range(batch)]
            started = time.perf_counter()
            rows += sessions.apply(b)
            took += time.perf_counter() - started
        out[f"{kind}_ms_per_row"] = took / rows * 1000
        out[f"{kind}_lookup_ms_per_row"] = spent["lookup"] / rows * 1000
        out[f"{kind}_push_ms_per_row"] = spent["push"] / rows * 1000
        out[f"{kind}_events_per_s"] = batch * batches / took
    print(f"  history: {out}", flush=True)
    return out


def floor(ctx: Ctx, batch_sizes: list[int]) -> list[dict[str, Any]]:
    """The 1-client phase's events straight into fresh online stores, and each other step of
    the consumer's batch timed beside it: decoding the broker's messages (one per POST) and the
    raw-zone write. The online write is split into its reads, its Feast push and the rest (the
    merge and the frame)."""
    from core.events import Event
    from core.settings import get_settings
    from features import store
    from features.stream import zones
    from features.stream.consumer import decode_events
    from features.stream.session import SessionStore

    records = ctx.floor_events
    post = ctx.args.batch
    rows = []
    for size in batch_sizes:
        settings = get_settings(data_dir=ctx.tmp / f"floor-{size}" / "data")
        store.apply(settings)
        sessions = SessionStore(settings)
        sessions.apply([Event.model_validate(records[0])])  # connection and view resolved
        spent = instrument(sessions)
        online_s = raw_s = decode_s = 0.0
        written = batches = 0
        for n in range(1, len(records), size):
            batch = [Event.model_validate(e) for e in records[n : n + size]]
            messages = [
                json.dumps([e.record() for e in batch[m : m + post]]).encode()
                for m in range(0, len(batch), post)
            ]
            started = time.perf_counter()
            decoded, _ = decode_events(messages)
            decode_s += time.perf_counter() - started
            started = time.perf_counter()
            zones.write_raw_events(settings, ctx.dataset, decoded)
            raw_s += time.perf_counter() - started
            started = time.perf_counter()
            sessions.apply(decoded)
            online_s += time.perf_counter() - started
            written += len(batch)
            batches += 1
            if online_s + raw_s + decode_s > ctx.args.floor_seconds:
                break
        per_batch = 1000 / batches
        rows.append(
            {
                "batch": size,
                "batches": batches,
                "events": written,
                "online_events_per_s": written / online_s,
                "online_ms_per_batch": online_s * per_batch,
                "online_lookup_ms_per_batch": spent["lookup"] * per_batch,
                "online_push_ms_per_batch": spent["push"] * per_batch,
                "online_merge_ms_per_batch": (online_s - spent["lookup"] - spent["push"])
                * per_batch,
                "raw_events_per_s": written / raw_s,
                "raw_ms_per_batch": raw_s * per_batch,
                "decode_ms_per_batch": decode_s * per_batch,
                "all_steps_events_per_s": written / (online_s + raw_s + decode_s),
            }
        )
        print(f"  floor: {rows[-1]}", flush=True)
    return rows


# --------------------------------------------------------------------------- the run


@dataclass
class Ctx:
    args: argparse.Namespace
    tmp: Path
    settings: Any = None
    dataset: str = ""
    raw: Any = None
    lookup: Any = None
    users: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    gave_up: list[str] = field(default_factory=list)
    floor_events: list[dict[str, Any]] = field(default_factory=list)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0, help="per sustained phase")
    p.add_argument("--batch", type=int, default=50, help="events per POST")
    p.add_argument("--users", type=int, default=5000)
    p.add_argument("--items", type=int, default=1000)
    p.add_argument("--probes", type=int, default=200)
    p.add_argument("--latency-cap", type=float, default=45.0, help="s of probing at most")
    p.add_argument("--fault-seconds", type=float, default=40.0)
    p.add_argument("--lag", type=int, default=25_000, help="accepted, not landed: at most")
    p.add_argument("--drain", type=float, default=90.0, help="s to wait for landing at most")
    p.add_argument("--floor-seconds", type=float, default=10.0)
    p.add_argument("--keep-data", action="store_true", help="keep the temporary data folder")
    p.add_argument("--report-only", action="store_true", help="re-render events.md from the json")
    args = p.parse_args()
    if args.report_only:
        report = json.loads((RESULTS / "events.json").read_text())
        write_results("events", report, markdown(report))
        return
    run_started = time.perf_counter()

    from aisle.stack import stop, up_event_stream
    from core.settings import get_settings
    from features.online import OnlineLookup
    from features.sources import resolve
    from serving.cluster import down, start_gateway

    tmp = Path(tempfile.mkdtemp(prefix="aisle-bench-events-"))
    ctx = Ctx(args, tmp)
    ctx.users = [f"user-{n:05d}" for n in range(args.users)]
    ctx.items = [f"item-{n:04d}" for n in range(args.items)]
    settings = get_settings(
        data_dir=tmp / "data",
        gateway_port=GATEWAY_PORT,
        slot_port_base=SLOT_PORT_BASE,
        api_keys=[KEY],
        admin_token=secrets.token_hex(16),
        events={"broker_port": BROKER_PORT, "consumer_port": CONSUMER_PORT},
    )
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        print(f"starting the event stream and the gateway in {tmp}", flush=True)
        settings = up_event_stream(settings)
        start_gateway(settings)
        ctx.settings = settings
        ctx.dataset = resolve(settings.interactions_source).dataset
        ctx.raw = RawZone(settings)
        warm = Sender(settings)
        first = make_event(random.Random(1), "warm-up", ctx.items[0])
        if not warm.send([first], retry_s=60):
            raise RuntimeError("the gateway never accepted the first event")
        ctx.accepted += warm.accepted
        warm.close()
        ctx.lookup = OnlineLookup(settings, "user_session_fv")
        warm_up = by_user([(first["user_id"], first["event_id"])])
        if not wait_for(lambda: missing_online(ctx.lookup, warm_up) == 0, 60, 0.2):
            raise RuntimeError("the first event never reached the online store")

        print("sustained", flush=True)
        by_clients = [sustained(ctx, 1, keep_events=FLOOR_EVENTS), sustained(ctx, 8)]
        best = max(by_clients, key=lambda r: r["events_per_s"])
        half = best["events_per_s"] / 2
        print("latency", flush=True)
        lat = latency(ctx, half, args.latency_cap)
        lower = []  # and at lower rates: the target's 2,000 events/s, and 500
        for rate in (TARGETS["events_per_s"], 500.0):
            if rate < half:
                lower.append(latency(ctx, rate, args.latency_cap * 0.5))
        print("faults", flush=True)
        fault = faults(ctx, half)
    finally:
        down(settings)
        for name in ("supervisor", "events-consumer", "events-broker"):
            stop(settings, name)
    try:
        print("reconcile", flush=True)
        rec = reconcile(ctx)
        print("floor", flush=True)
        consumer_batch = by_clients[-1]["consumer"]["events_per_batch"] or args.batch
        sizes = sorted({args.batch, max(args.batch, round(consumer_batch))})
        floors = floor(ctx, sizes)
        history = history_cost(ctx)
    finally:
        if not args.keep_data:
            shutil.rmtree(tmp, ignore_errors=True)

    best_floor = max(floors, key=lambda r: r["online_events_per_s"])
    report = {
        "events_per_s": best["events_per_s"],
        "events_per_s_clients": best["clients"],
        "p99_ms": lat["p99_ms"],
        "p50_ms": lat["p50_ms"],
        "lost": rec["lost"],
        "doubled": rec["doubled"],
        "by_clients": by_clients,
        "click_to_feature": lat,
        "click_to_feature_lower_rates": lower,
        "raw_landing_p50_ms": lat["raw_landing_p50_ms"],
        "raw_landing_p99_ms": lat["raw_landing_p99_ms"],
        "floor_events_per_s": best_floor["online_events_per_s"],
        "floor_batch": best_floor["batch"],
        "ratio_to_floor": best["events_per_s"] / best_floor["online_events_per_s"],
        "ratio_to_post_floor": best["events_per_s"]
        / next(fl for fl in floors if fl["batch"] == args.batch)["online_events_per_s"],
        "floors": floors,
        "online_write_by_history": history,
        "faults": fault,
        "reconcile": rec,
        "targets": {
            "events_per_s": {"target": ">= 2000", "met": best["events_per_s"] >= 2000},
            "p99_ms": {"target": "<= 1000", "met": lat["p99_ms"] <= 1000},
            "lost": {"target": "0", "met": rec["lost"] == 0},
            "doubled": {"target": "0", "met": rec["doubled"] == 0},
        },
        "clients": [r["clients"] for r in by_clients],
        "batch_size": args.batch,
        "lag": args.lag,
        "consumer_batch_messages": settings.events.batch_size,  # AISLE_EVENTS__BATCH_SIZE
        "consumer_batch_wait_ms": settings.events.batch_wait_ms,
        "users": args.users,
        "items": args.items,
        "seconds_per_phase": args.seconds,
        "cores": os.cpu_count(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_s": time.perf_counter() - run_started,
        "machine": machine(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)  # the figures first: a table that fails to render
    (RESULTS / "events.json").write_text(json.dumps(report, indent=2) + "\n")  # loses nothing
    write_results("events", report, markdown(report))


def where_time_goes(r: dict[str, Any]) -> str:
    """The consumer's batch, step by step, from the largest floor batch and the history rows."""
    big = max(r["floors"], key=lambda fl: fl["batch"])
    steps = {
        "online write": big["online_ms_per_batch"],
        "decoding (JSON + validation)": big["decode_ms_per_batch"],
        "raw-zone write (parquet + fsync)": big["raw_ms_per_batch"],
    }
    total = sum(steps.values())
    h = r["online_write_by_history"]
    parts = ", ".join(f"{name} {ms / total:.0%}" for name, ms in steps.items())
    online = big["online_ms_per_batch"]
    return (
        f"Where a consumer batch's time goes (the floor's {big['batch']:,}-event batch, "
        f"{total:,.0f} ms): {parts}; of the online write, the write "
        f"{big['online_push_ms_per_batch'] / online:.0%}, the reads "
        f"{big['online_lookup_ms_per_batch'] / online:.0%}, the merge "
        f"{big['online_merge_ms_per_batch'] / online:.0%}. Its cost is per session row and grows "
        f"with what the row holds: {h['full_ms_per_row'] / h['fresh_ms_per_row']:.1f}x per row "
        f"for a user holding {h['held_events']} events against one never seen."
    )


def markdown(r: dict[str, Any]) -> str:
    def f(v: Any, digits: int = 0) -> str:
        return "n/a" if v is None else f"{v:,.{digits}f}"

    def met(name: str) -> str:
        return "met" if r["targets"][name]["met"] else "**missed**"

    fault, rec, h = r["faults"], r["reconcile"], r["online_write_by_history"]
    lines = [
        "# Event stream: POST /events -> NATS JetStream -> consumer -> online store + raw zone",
        "",
        f"{r['date']}, {r['cores']} cores shared by the clients, the gateway, nats-server, the "
        f"consumer and the poller; loopback. {r['users']:,} users, {r['items']:,} items, "
        f"{r['batch_size']} events per POST, {r['seconds_per_phase']:.0f} s of sending per "
        f"sustained phase. The consumer takes at most {r['consumer_batch_messages']:,} broker "
        f"messages (POSTs) per batch, waiting {r['consumer_batch_wait_ms']} ms for them "
        f"(AISLE_EVENTS__BATCH_SIZE, __BATCH_WAIT_MS). Run took {r['run_s']:.0f} s.",
        "",
        "| target | goal | measured | |",
        "|---|---|---:|---|",
        f"| sustained events/s (in raw zone and online store) | >= 2,000 | "
        f"{f(r['events_per_s'])} ({r['events_per_s_clients']} client"
        f"{'s' if r['events_per_s_clients'] > 1 else ''}) | {met('events_per_s')} |",
        f"| click-to-feature p99 (background at half that) | <= 1,000 ms | {f(r['p99_ms'])} ms "
        f"| {met('p99_ms')} |",
        f"| lost (accepted, not curated) | 0 | {r['lost']} | {met('lost')} |",
        f"| doubled (curated twice) | 0 | {r['doubled']} | {met('doubled')} |",
        "",
        "## Sustained",
        "",
        "| clients | accepted/s | landed/s | drain after sending s | POST p50 / p99 ms "
        "| consumer events/batch | consumer ms/batch | consumer ms per session row written "
        "| events per user held before |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in r["by_clients"]:
        c = row["consumer"]
        lines.append(
            f"| {row['clients']} | {f(row['accepted_per_s'])} | {f(row['events_per_s'])}"
            f"{'' if row['drained'] else ' (not drained)'} | {f(row['drain_s'], 1)} | "
            f"{f(row['post_p50_ms'], 1)} / {f(row['post_p99_ms'], 1)} | "
            f"{f(c['events_per_batch'])} | {f(c['batch_ms_mean'])} | "
            f"{f(c['ms_per_online_row'], 2)} | {f(row['events_per_user_before'])} |"
        )
    lines += [
        "",
        "Landed/s = events accepted ÷ (first POST -> the last one in both the raw zone and the "
        "online store). The gateway accepts faster than the consumer lands, so the clients hold "
        f"back while more than {r.get('lag', 25000):,} accepted events are not in the raw zone "
        "(what the broker holds at most, so each phase drains in seconds); accepted/s is "
        "therefore close to landed/s. Events per user held: how much of a session (100 events "
        "at most) each user's row already carried when the phase began.",
        "",
        "## Floor: the consumer's steps in process, same events, fresh online store",
        "",
        "| events/batch | online events/s | online ms/batch (reads / push / merge) "
        "| raw write ms/batch | decode ms/batch | all steps events/s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for fl in r["floors"]:
        lines.append(
            f"| {fl['batch']:,} | {f(fl['online_events_per_s'])} | "
            f"{f(fl['online_ms_per_batch'], 1)} ({f(fl['online_lookup_ms_per_batch'], 1)} / "
            f"{f(fl['online_push_ms_per_batch'], 1)} / {f(fl['online_merge_ms_per_batch'], 1)}) | "
            f"{f(fl['raw_ms_per_batch'], 1)} | {f(fl['decode_ms_per_batch'], 1)} | "
            f"{f(fl['all_steps_events_per_s'])} |"
        )
    lines += [
        "",
        f"Best stream rate ÷ the faster online floor (batches of {r['floor_batch']:,}): "
        f"{r['ratio_to_floor']:.2f}; ÷ the floor at {r['batch_size']} events per write: "
        f"{r['ratio_to_post_floor']:.2f}.",
        "",
        f"The online write per session row by what the row holds (in process, "
        f"{h['users']:,} users, batches of {h['events_per_batch']:,} events): users never seen "
        f"{f(h['fresh_ms_per_row'], 2)} ms per row (reads {f(h['fresh_lookup_ms_per_row'], 2)}, "
        f"push {f(h['fresh_push_ms_per_row'], 2)}), {f(h['fresh_events_per_s'])} events/s; users "
        f"holding {h['held_events']} events {f(h['full_ms_per_row'], 2)} ms per row (reads "
        f"{f(h['full_lookup_ms_per_row'], 2)}, push {f(h['full_push_ms_per_row'], 2)}), "
        f"{f(h['full_events_per_s'])} events/s.",
        "",
        where_time_goes(r),
        "",
        "## Click-to-feature and raw-zone landing",
        "",
        "| background events/s | probes | click-to-feature p50 / p99 / max ms | not visible in "
        "10 s | raw landing p50 / p99 ms (poller) | raw landing p50 / p99 ms (file mtime) "
        "| consumer events/batch, ms/batch, busy | events per user held before |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lat in [r["click_to_feature"], *r["click_to_feature_lower_rates"]]:
        c = lat["consumer"]
        lines.append(
            f"| {f(lat['background_events_per_s'])} | {lat['probes']} | "
            f"{f(lat['p50_ms'])} / {f(lat['p99_ms'])} / {f(lat['max_ms'])} | "
            f"{lat['not_visible_in_10s']} | {f(lat['raw_landing_p50_ms'])} / "
            f"{f(lat['raw_landing_p99_ms'])} | {f(lat['raw_landing_mtime_p50_ms'])} / "
            f"{f(lat['raw_landing_mtime_p99_ms'])} | {f(c['events_per_batch'])}, "
            f"{f(c['batch_ms_mean'])}, {f(c['busy_share'] * 100)} % | "
            f"{f(lat['events_per_user_before'])} |"
        )
    lines += [
        "",
        "## Faults",
        "",
        f"{fault['clients']} clients at {f(fault['rate_target_per_s'])} events/s for "
        f"{f(fault['send_s'])} s: the consumer SIGKILLed at "
        f"{f(fault.get('events-consumer_killed_at_s'), 1)} s, restarted by the supervisor at "
        f"{f(fault.get('events-consumer_restarted_at_s'), 1)} s, healthy at "
        f"{f(fault.get('events-consumer_healthy_at_s'), 1)} s; the broker SIGKILLed at "
        f"{f(fault.get('events-broker_killed_at_s'), 1)} s, restarted at "
        f"{f(fault.get('events-broker_restarted_at_s'), 1)} s, healthy at "
        f"{f(fault.get('events-broker_healthy_at_s'), 1)} s. {fault['unavailable_503']} 503s "
        f"and {fault['no_answer']} unanswered POSTs, retried with the same ids "
        f"(POST max {f(fault['post_max_ms'])} ms); {fault['gave_up']} events given up. "
        f"{fault['raw_rows_redelivered']:,} raw rows written twice (redelivered batches). "
        f"Every accepted event of the phase in the raw zone "
        f"{f(fault['all_in_raw_after_s'], 1)} s and in the online store "
        f"{f(fault['all_online_after_s'], 1)} s after sending stopped "
        f"({fault['online_missing']} missing).",
        "",
        f"The whole run through the ETL: {rec['accepted']:,} events accepted, "
        f"{rec['rows_in']:,} raw rows, {rec['curated']:,} curated, "
        f"{rec['duplicates_dropped_by_etl']:,} duplicates dropped, {rec['quarantined']} "
        f"quarantined; counts reconcile: {rec['reconciles']}. Lost {rec['lost']}, doubled "
        f"{rec['doubled']}.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
