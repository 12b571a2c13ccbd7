"""The `user_history` feature table: every item a user has touched, computed a day at a time.

    features/<dataset>/user_history/date=<D-1>/part-0.parquet      the history up to the end of D-1
    curated/<dataset>/interactions/date=<D>/part-0.parquet         day D's events
        -> SQL (DuckDB or Spark): D's touches first, then the earlier items not touched again on D
        -> features/<dataset>/user_history/date=<D>/part-0.parquet  one row per user seen so far

A row holds the distinct items the user touched before D + 1 day, most recently touched first
(item_id breaks ties on time), the first `HISTORY_ITEMS` as the feature `history_item_ids`, the
rest in `history_older_item_ids` (kept so the next day can extend the history exactly, and so
`history_length` stays the uncapped count; not a Feast field). Every event of D is later than
every event before D, so extending D-1's ordered list needs no timestamps: D's items, ordered by
their last touch on D, go in front of the earlier ones.

D-1's partition is extended only when it is at least as new as every curated partition it
summarises; when it is missing, or an earlier day was curated again after it was written, day D
is recomputed from every curated partition up to D (the same rows: a test checks both ways give
the same bytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa

from core.settings import Settings

from .engines import Engine
from .etl import CURATED_FILE
from .storage import list_partitions, partition_dir

HISTORY_ITEMS = 1000  # the most recently touched distinct items a row serves as a feature

# One list per user, most recent first; each query below ends with this split of it. (The tail's
# length, array_length(items), is at least what is left after the cap; past the end is [].)
_SPLIT_SQL = """
SELECT user_id,
       array_slice(items, 1, {cap}) AS history_item_ids,
       array_length(items) AS history_length,
       array_slice(items, {cap} + 1, array_length(items)) AS history_older_item_ids
FROM histories
ORDER BY user_id
"""

# Each user's last touch of each item. Times are integer microseconds since the epoch (no session
# time zone can shift a bound); the bounds restate the point-in-time rule where it is applied.
_TOUCHES_SQL = """
touches AS (
    SELECT user_id, item_id, max(epoch_us("timestamp")) AS last_ts
    FROM event_files
    WHERE {since} epoch_us("timestamp") < $day_end
    GROUP BY user_id, item_id
)"""
_SINCE_DAY_START = 'epoch_us("timestamp") >= $day_start AND'  # extending: day D's events only
_NO_TOUCHES_SQL = """
touches AS (
    SELECT NULL::VARCHAR AS user_id, NULL::VARCHAR AS item_id, NULL::BIGINT AS last_ts WHERE false
)"""

_FROM_SCRATCH_SQL = """
WITH {touches},
histories AS (
    SELECT user_id, list(item_id ORDER BY last_ts DESC, item_id) AS items
    FROM touches
    GROUP BY user_id
)
"""

_EXTEND_SQL = """
WITH {touches},
today AS (
    SELECT user_id, list(item_id ORDER BY last_ts DESC, item_id) AS items
    FROM touches
    GROUP BY user_id
),
before AS (
    SELECT user_id, list_concat(history_item_ids, history_older_item_ids) AS items
    FROM previous
),
histories AS (
    SELECT user_id,
           CASE WHEN t.items IS NULL THEN b.items
                WHEN b.items IS NULL THEN t.items
                ELSE list_concat(
                    t.items, list_filter(b.items, lambda item: NOT list_contains(t.items, item))
                )
           END AS items
    FROM today AS t FULL OUTER JOIN before AS b USING (user_id)
)
"""


@dataclass(frozen=True)
class HistoryInputs:
    """What day D's history is computed from: D-1's partition and D's events, or (`previous`
    None) every curated partition up to D."""

    previous: Path | None
    event_files: list[Path]


def history_inputs(settings: Settings, dataset: str, day: date, previous: Path) -> HistoryInputs:
    """The inputs of day D; `previous` is where D-1's history partition is (or would be)."""
    curated = [
        folder / CURATED_FILE
        for folder in list_partitions(settings.curated_dir, dataset, "interactions")
        if folder.name.removeprefix("date=") <= day.isoformat() and (folder / CURATED_FILE).exists()
    ]
    today = partition_dir(settings.curated_dir, dataset, "interactions", day) / CURATED_FILE
    earlier = [f for f in curated if f != today]
    # A curated partition written after D-1's history (a late or corrected day) is missing from
    # it: recomputing costs one scan, extending it would carry the gap into every later day.
    written = previous.stat().st_mtime_ns if previous.exists() else None
    if written is not None and all(f.stat().st_mtime_ns <= written for f in earlier):
        return HistoryInputs(previous, [today] if today in curated else [])
    return HistoryInputs(None, curated)


def user_history(engine: Engine, inputs: HistoryInputs, day_start: int, day_end: int) -> pa.Table:
    """Day D's rows (user_id, history_item_ids, history_length, history_older_item_ids), by
    user_id; `day_start` and `day_end` bound D in epoch microseconds."""
    extending = inputs.previous is not None
    if inputs.previous is not None:
        engine.register("previous", [inputs.previous])
    if inputs.event_files:
        engine.register("event_files", inputs.event_files)
    sql = user_history_sql(extending, touched=bool(inputs.event_files))
    return engine.query(sql, {"day_start": day_start, "day_end": day_end})


def user_history_sql(extending: bool, touched: bool) -> str:
    """The query extending D-1's history with D's touches, or computing it from every curated
    partition (`extending` False); `touched` False: no event partition to read."""
    if touched:
        touches = _TOUCHES_SQL.format(since=_SINCE_DAY_START if extending else "")
    else:
        touches = _NO_TOUCHES_SQL
    query = _EXTEND_SQL if extending else _FROM_SCRATCH_SQL
    return query.format(touches=touches) + _SPLIT_SQL.format(cap=HISTORY_ITEMS)


def queries() -> dict[str, str]:
    """Every query this module runs, by name (the engines' tests transpile each)."""
    return {
        f"user_history_{'extend' if extending else 'scratch'}"
        f"{'' if touched else '_untouched'}": user_history_sql(extending, touched)
        for extending in (False, True)
        for touched in (True, False)
    }


__all__ = [
    "HISTORY_ITEMS",
    "HistoryInputs",
    "history_inputs",
    "queries",
    "user_history",
    "user_history_sql",
]
