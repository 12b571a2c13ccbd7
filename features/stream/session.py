"""A shopper's live session in the online store (`user_session_fv`), kept by the event stream's
consumer and read by the recommender on the next request.

Per user the row holds the last events (ids, items, times; newest first, up to 100) and what
follows from them:

    recent_item_ids     the last distinct items touched, newest first (AISLE_EVENTS__RECENT_ITEMS)
    session_item_ids    the distinct items of the current session, newest first; a session ends
                        after AISLE_EVENTS__SESSION_GAP_MINUTES without an event
    session_started_at, last_event_at, session_events
    events_30m          events in the gap's length (30 minutes) before the last event

"Seconds since the last event" depends on when it is asked: `live_sessions` computes it, and the
events of the last 30 minutes, at the moment of the lookup.

A write merges the batch into the stored row (read, merge, write: one consumer owns the view), so
it is idempotent: an event whose id the row already holds is skipped, and a batch delivered twice
changes nothing the second time. Each row is stamped later than the one it replaces, as Feast's
Redis store drops a write that is not newer than the stored row.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from core.events import Event
from core.settings import Settings

from ..feature_repo.definitions import SESSION_PUSH, SESSION_VIEW
from ..online import OnlineLookup

KEEP_EVENTS = 100  # per user: enough to know a redelivered event; events_30m counts up to it
ONE_TICK = timedelta(microseconds=1)


Seen = tuple[int, str, str]  # (at_ms, event_id, item_id)


def merge(row: dict[str, Any] | None, events: Iterable[Event], settings: Settings) -> dict | None:
    """The user's row after `events`; None when every event was already in it."""
    stored = _seen(row)
    known = {event_id for _, event_id, _ in stored}
    new: list[Seen] = []
    for e in events:
        if e.event_id not in known:
            known.add(e.event_id)  # a batch may carry one event twice too
            new.append((_ms(e.timestamp), e.event_id, e.item_id))
    if not new:
        return None
    # newest first (a stable sort: of events in the same millisecond, the one that came last)
    seen = sorted([*reversed(new), *stored], key=lambda s: -s[0])[:KEEP_EVENTS]
    gap_ms = settings.events.session_gap_minutes * 60_000
    session = 1
    while session < len(seen) and seen[session - 1][0] - seen[session][0] <= gap_ms:
        session += 1
    last = seen[0][0]
    items = [item for _, _, item in seen]
    return {
        "recent_item_ids": _distinct(items)[: settings.events.recent_items],
        "session_item_ids": _distinct(items[:session]),
        "session_started_at": _moment(seen[session - 1][0]),
        "last_event_at": _moment(last),
        "session_events": session,
        "events_30m": sum(1 for at, _, _ in seen if last - at <= gap_ms),
        "event_ids": [event_id for _, event_id, _ in seen],
        "event_item_ids": items,
        "event_times_ms": [at for at, _, _ in seen],
    }


class SessionStore:
    """Reads and writes `user_session_fv` for the consumer (one instance per process)."""

    def __init__(self, settings: Settings) -> None:
        from ..store import feature_store

        self.settings = settings
        self.store = feature_store(settings)
        self.lookup = OnlineLookup(settings, SESSION_VIEW, self.store)
        self.view = self.lookup.view
        if settings.profile == "local":
            _write_ahead_log(self.store.config.online_store.path)

    def apply(self, events: list[Event]) -> int:
        """Merge the events into their users' rows; returns the rows written. Raises what the
        online store raises when it is down (FeaturesUnavailable on reads)."""
        by_user: dict[str, list[Event]] = {}
        for event in events:
            by_user.setdefault(event.user_id, []).append(event)
        users = list(by_user)
        found = self.lookup(users)
        rows = []
        now = datetime.now(UTC)
        for i, user in enumerate(users):
            merged = merge(found.row(i) if found.known[i] else None, by_user[user], self.settings)
            if merged is None:
                continue
            stamp = max(now, found.as_of[i] + ONE_TICK) if found.as_of[i] else now
            rows.append((user, stamp, merged))
        if rows:
            self.write(rows)
        return len(rows)

    def write(self, rows: list[tuple[str, datetime, dict[str, Any]]]) -> None:
        """The write behind `store.push(SESSION_PUSH, ...)`: the push source's one view, straight
        to the online store with the values built as protos here. Feast's own conversion of the
        same rows (a frame, Arrow, its generic per-value sanitising) took half the consumer's
        time (benchmarks/events.py); a test checks both store the same."""
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Int64List, StringList, Value

        def strings(values: list[str]) -> Value:
            return Value(string_list_val=StringList(val=values))

        data = []
        for user, stamp, row in rows:
            values = {
                "recent_item_ids": strings(row["recent_item_ids"]),
                "session_item_ids": strings(row["session_item_ids"]),
                "session_started_at": Value(
                    unix_timestamp_val=int(row["session_started_at"].timestamp())
                ),
                "last_event_at": Value(unix_timestamp_val=int(row["last_event_at"].timestamp())),
                "session_events": Value(int64_val=row["session_events"]),
                "events_30m": Value(int64_val=row["events_30m"]),
                "event_ids": strings(row["event_ids"]),
                "event_item_ids": strings(row["event_item_ids"]),
                "event_times_ms": Value(int64_list_val=Int64List(val=row["event_times_ms"])),
            }
            key = EntityKey(join_keys=["user_id"], entity_values=[Value(string_val=user)])
            data.append((key, values, stamp, None))
        provider = self.store._get_provider()
        provider.online_write_batch(self.store.config, self.view, data, progress=None)

    def push(self, rows: list[tuple[str, datetime, dict[str, Any]]]) -> None:
        """The same rows through Feast's documented path (`store.push`), for comparison."""
        from feast.data_source import PushMode

        frame = pd.DataFrame([{"user_id": u, "event_timestamp": t, **row} for u, t, row in rows])
        self.store.push(SESSION_PUSH, frame, to=PushMode.ONLINE)


def live_sessions(
    lookup: OnlineLookup, users: list[str], now: datetime | None = None
) -> list[dict[str, Any] | None]:
    """Each user's session as of `now`: its items (newest first), seconds since the last event,
    events in the last 30 minutes (the gap's length); None for a user with no live session."""
    now = now or datetime.now(UTC)
    found = lookup(users)
    out: list[dict[str, Any] | None] = []
    for i in range(len(users)):
        if not found.known[i]:
            out.append(None)
            continue
        row = found.row(i)
        last = _as_utc(row["last_event_at"])
        window_ms = _ms(now) - 30 * 60_000
        out.append(
            {
                "session_item_ids": list(row["session_item_ids"] or []),
                "recent_item_ids": list(row["recent_item_ids"] or []),
                "seconds_since_last_event": max(0.0, (now - last).total_seconds()),
                "events_30m": sum(1 for t in row["event_times_ms"] or [] if t >= window_ms),
                "event_ids": list(row["event_ids"] or []),
            }
        )
    return out


def _seen(row: dict[str, Any] | None) -> list[Seen]:
    if not row or not row.get("event_ids"):
        return []
    return list(zip(row["event_times_ms"], row["event_ids"], row["event_item_ids"], strict=True))


def _distinct(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _write_ahead_log(path: str) -> None:
    """Put the local profile's SQLite online store in WAL mode (kept in the file): the slots
    read while the consumer writes, where SQLite's default journal makes a read wait for a write
    and a write for every read in flight."""
    import sqlite3
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path, timeout=5) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
