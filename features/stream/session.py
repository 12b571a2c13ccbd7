"""A shopper's live session in the online store (`user_session_fv`), kept by the event stream's
consumer and read by the recommender on the next request.

Per user the row holds the last events (ids, items, times; newest first, up to 200) and what
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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from core.events import Event
from core.settings import Settings

from ..feature_repo.definitions import SESSION_PUSH, SESSION_VIEW
from ..online import OnlineLookup

KEEP_EVENTS = 200  # per user: enough to recognise a redelivered event and to count 30 minutes
ONE_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class Seen:
    event_id: str
    item_id: str
    at_ms: int


def merge(row: dict[str, Any] | None, events: Iterable[Event], settings: Settings) -> dict | None:
    """The user's row after `events`; None when every event was already in it."""
    stored = _seen(row)
    known = {s.event_id for s in stored}
    new = []
    for e in events:
        if e.event_id not in known:
            known.add(e.event_id)  # a batch may carry one event twice too
            new.append(Seen(e.event_id, e.item_id, _ms(e.timestamp)))
    if not new:
        return None
    # newest first; of events in the same millisecond, the one that arrived last
    seen = sorted([*reversed(new), *stored], key=lambda s: -s.at_ms)
    seen = seen[:KEEP_EVENTS]
    gap_ms = settings.events.session_gap_minutes * 60_000
    session = [seen[0]]
    for older in seen[1:]:
        if session[-1].at_ms - older.at_ms > gap_ms:
            break
        session.append(older)
    last = seen[0].at_ms
    return {
        "recent_item_ids": _distinct([s.item_id for s in seen])[: settings.events.recent_items],
        "session_item_ids": _distinct([s.item_id for s in session]),
        "session_started_at": _moment(session[-1].at_ms),
        "last_event_at": _moment(last),
        "session_events": len(session),
        "events_30m": sum(1 for s in seen if last - s.at_ms <= gap_ms),
        "event_ids": [s.event_id for s in seen],
        "event_item_ids": [s.item_id for s in seen],
        "event_times_ms": [s.at_ms for s in seen],
    }


class SessionStore:
    """Reads and writes `user_session_fv` for the consumer (one instance per process)."""

    def __init__(self, settings: Settings) -> None:
        from ..store import feature_store

        self.settings = settings
        self.store = feature_store(settings)
        self.lookup = OnlineLookup(settings, SESSION_VIEW, self.store)
        if settings.profile == "local":
            _write_ahead_log(self.store.config.online_store.path)

    def apply(self, events: list[Event]) -> int:
        """Merge the events into their users' rows; returns the rows written. Raises what the
        online store raises when it is down (FeaturesUnavailable on reads)."""
        from feast.data_source import PushMode

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
            rows.append({"user_id": user, "event_timestamp": stamp, **merged})
        if rows:
            self.store.push(SESSION_PUSH, pd.DataFrame(rows), to=PushMode.ONLINE)
        return len(rows)


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
    return [
        Seen(e, i, int(t))
        for e, i, t in zip(
            row["event_ids"], row["event_item_ids"], row["event_times_ms"], strict=True
        )
    ]


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
