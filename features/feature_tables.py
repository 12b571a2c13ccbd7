"""Daily feature tables computed from the curated zone, the offline source Feast reads.

    curated/<dataset>/interactions/date=<day>/part-0.parquet     events (D-29..D)
    curated/<dataset>/items/date=<day>/part-0.parquet            item snapshots (latest <= D + 1)
        -> SQL, one query per view and day, on DuckDB or Spark (AISLE_ENGINE, features.engines)
        -> features/<dataset>/<view>/date=<D>/part-0.parquet      one atomic file per view and day

Two views summarise the 30 UTC days D-29..D:

* `user_activity`, one row per user with an event in those 30 days: event counts over the last
  1, 7 and 30 days, purchases over 30 days, days from the last event to the end of D, the most
  recently touched distinct items (most recent first, at most 20), and the most frequent first
  category (the part before the first '|') of the items behind the user's events, with its share
  of the user's events whose item has a category.
* `item_popularity`, one row per item with an event in those 30 days: event counts over 1, 7
  and 30 days, purchases over 7 days, the 7-day trend (events of D-6..D over 1 + events of
  D-13..D-7) and the mean non-null price over 7 days.

and one covers all time up to the end of D (`features.history_tables`, extending D-1's rows):

* `user_history`, one row per user with an event at any time before D + 1: the distinct items
  touched, most recently touched first (at most `HISTORY_ITEMS`), and how many there are.

Point-in-time rule: the features of day D use only events with timestamp < D + 1 day (and the
item snapshot dated D + 1 or earlier, i.e. known by the end of D), and every row carries
`event_timestamp` = D + 1 day, midnight UTC: the moment they became known. Feast joins a label
at time t to the latest row with event_timestamp <= t, so it only ever sees features computed
from events before t.

A day with no event in its window still gets a partition, empty but with the view's schema (the
history carries its rows forward), so a rerun clears what an earlier run wrote there. Outputs
depend only on the curated partitions they read: a rerun gives byte-identical files.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from core.files import write_parquet_atomic
from core.settings import Settings

from .engines import Engine, open_engine
from .etl import CURATED_FILE
from .history_tables import history_inputs, user_history
from .storage import Interval, list_partitions, partition_dir

log = logging.getLogger(__name__)

WINDOW_DAYS = 30
LAST_ITEMS = 20  # how many recently touched items a user row keeps
FEATURE_FILE = "part-0.parquet"
US_PER_DAY = 86_400_000_000
_WINDOWS = (1, 7, 14, WINDOW_DAYS)  # the start_<n>d bounds the queries may use
TIMESTAMP = pa.timestamp("us", tz="UTC")

USER_ACTIVITY_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string()),
        pa.field("event_timestamp", TIMESTAMP),
        pa.field("events_1d", pa.int64()),
        pa.field("events_7d", pa.int64()),
        pa.field("events_30d", pa.int64()),
        pa.field("purchases_30d", pa.int64()),
        pa.field("days_since_last_event", pa.float64()),
        pa.field("last_item_ids", pa.list_(pa.string())),
        pa.field("top_category", pa.string()),
        pa.field("top_category_share", pa.float64()),
    ]
)
ITEM_POPULARITY_SCHEMA = pa.schema(
    [
        pa.field("item_id", pa.string()),
        pa.field("event_timestamp", TIMESTAMP),
        pa.field("events_1d", pa.int64()),
        pa.field("events_7d", pa.int64()),
        pa.field("events_30d", pa.int64()),
        pa.field("purchases_7d", pa.int64()),
        pa.field("trend_7d", pa.float64()),
        pa.field("mean_price_7d", pa.float64()),
    ]
)
# What Feast serves of a user's history; the file also keeps the items beyond the first
# HISTORY_ITEMS, which the next day's history is extended from (history_tables).
USER_HISTORY_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string()),
        pa.field("event_timestamp", TIMESTAMP),
        pa.field("history_item_ids", pa.list_(pa.string())),
        pa.field("history_length", pa.int64()),
    ]
)
USER_HISTORY_FILE_SCHEMA = USER_HISTORY_SCHEMA.append(
    pa.field("history_older_item_ids", pa.list_(pa.string()))
)
SCHEMAS: dict[str, pa.Schema] = {
    "user_activity": USER_ACTIVITY_SCHEMA,
    "item_popularity": ITEM_POPULARITY_SCHEMA,
    "user_history": USER_HISTORY_FILE_SCHEMA,
}

# The window's events. Partitions are UTC days, so the file list already bounds the window; the
# time filter restates the point-in-time rule where the features are computed. Times are compared
# as integer microseconds since the epoch: no session time zone can shift a bound.
_EVENTS_SQL = """
events AS (
    SELECT user_id, item_id, event_type, price, epoch_us("timestamp") AS ts
    FROM event_files
    WHERE epoch_us("timestamp") >= $start_30d AND epoch_us("timestamp") < $day_end
)"""

# First category of each item in the snapshot; min() keeps it deterministic should an item
# appear twice (the ETL already quarantines such conflicts).
CATEGORIES_SQL = """
categories AS (
    SELECT item_id, min(nullif(trim(split_part(category, '|', 1)), '')) AS category
    FROM item_file
    GROUP BY item_id
)"""
NO_CATEGORIES_SQL = """
categories AS (SELECT NULL::VARCHAR AS item_id, NULL::VARCHAR AS category WHERE false)"""

_USER_ACTIVITY_SQL = """
WITH {events},
{categories},
counts AS (
    SELECT
        user_id,
        count(*) FILTER (WHERE ts >= $start_1d) AS events_1d,
        count(*) FILTER (WHERE ts >= $start_7d) AS events_7d,
        count(*) AS events_30d,
        count(*) FILTER (WHERE event_type = 'purchase') AS purchases_30d,
        ($day_end - max(ts))::DOUBLE / {us_per_day} AS days_since_last_event
    FROM events
    GROUP BY user_id
),
last_touch AS (
    SELECT user_id, item_id, max(ts) AS last_ts FROM events GROUP BY user_id, item_id
),
recent AS (
    -- distinct items, most recent first; item_id breaks ties so reruns agree
    SELECT user_id,
           array_slice(list(item_id ORDER BY last_ts DESC, item_id), 1, {last_items})
               AS last_item_ids
    FROM last_touch
    GROUP BY user_id
),
category_counts AS (
    SELECT e.user_id, c.category, count(*) AS n,
           sum(count(*)) OVER (PARTITION BY e.user_id) AS categorised
    FROM events AS e JOIN categories AS c ON e.item_id = c.item_id
    WHERE c.category IS NOT NULL
    GROUP BY e.user_id, c.category
),
top AS (
    SELECT user_id, category AS top_category, n::DOUBLE / categorised AS top_category_share
    FROM category_counts
    QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY n DESC, category) = 1
)
SELECT c.user_id, c.events_1d, c.events_7d, c.events_30d, c.purchases_30d,
       c.days_since_last_event, r.last_item_ids, t.top_category, t.top_category_share
FROM counts AS c
JOIN recent AS r ON r.user_id = c.user_id
LEFT JOIN top AS t ON t.user_id = c.user_id
ORDER BY c.user_id
"""

_ITEM_POPULARITY_SQL = """
WITH {events}
SELECT
    item_id,
    count(*) FILTER (WHERE ts >= $start_1d) AS events_1d,
    count(*) FILTER (WHERE ts >= $start_7d) AS events_7d,
    count(*) AS events_30d,
    count(*) FILTER (WHERE ts >= $start_7d AND event_type = 'purchase') AS purchases_7d,
    count(*) FILTER (WHERE ts >= $start_7d)
        / (count(*) FILTER (WHERE ts >= $start_14d AND ts < $start_7d) + 1)::DOUBLE AS trend_7d,
    -- a parallel avg() adds in whatever order the threads finish, which can change the last
    -- bit between runs; averaging the sorted list keeps reruns byte-identical
    list_avg(list_sort(list(price) FILTER (WHERE ts >= $start_7d AND price IS NOT NULL)))
        AS mean_price_7d
FROM events
GROUP BY item_id
ORDER BY item_id
"""


def feature_dir(settings: Settings, dataset: str, view: str) -> Path:
    """Where a view's daily partitions live: data/features/<dataset>/<view>."""
    return settings.data_dir / "features" / dataset / view


def build_feature_tables(
    settings: Settings, dataset: str, interval: Interval
) -> dict[str, list[Path]]:
    """Write every view for every UTC day D of `interval`, as known at the end of D.

    Each goes to feature_dir(...)/date=<D>/part-0.parquet with event_timestamp = D + 1 day.
    Returns view -> the paths written, in day order.
    """
    if not list_partitions(settings.curated_dir, dataset, "interactions"):
        raise FileNotFoundError(
            f"no curated interactions for dataset {dataset!r} under "
            f"{settings.curated_dir / dataset / 'interactions'}; run the ingest first "
            "(`aisle etl interactions --start ... --end ...` or the ingest_interactions DAG)"
        )
    written: dict[str, list[Path]] = {view: [] for view in SCHEMAS}
    builders: dict[str, Callable[[Engine, _DayInputs], pa.Table]] = {
        "user_activity": _user_activity,
        "item_popularity": _item_popularity,
    }
    with open_engine(settings) as engine:
        for day in interval.days():
            started = time.perf_counter()
            inputs = _day_inputs(settings, dataset, day)
            for view, build in builders.items():
                table = build(engine, inputs) if inputs.event_files else SCHEMAS[view].empty_table()
                final = feature_dir(settings, dataset, view) / f"date={day.isoformat()}"
                written[view].append(write_parquet_atomic(table, final / FEATURE_FILE))
            written["user_history"].append(_user_history(engine, settings, dataset, day))
            log.info(
                "features %s %s on %s: %d event partitions read in %.2fs",
                dataset,
                day,
                engine.name,
                len(inputs.event_files),
                time.perf_counter() - started,
            )
    return written


def user_activity_sql(categorised: bool) -> str:
    """The user_activity query, with the item snapshot's categories or without a snapshot."""
    return _USER_ACTIVITY_SQL.format(
        events=_EVENTS_SQL,
        categories=CATEGORIES_SQL if categorised else NO_CATEGORIES_SQL,
        us_per_day=US_PER_DAY,
        last_items=LAST_ITEMS,
    )


def item_popularity_sql() -> str:
    return _ITEM_POPULARITY_SQL.format(events=_EVENTS_SQL)


def queries() -> dict[str, str]:
    """Every query this module runs, by name (the engines' tests transpile each)."""
    return {
        "user_activity": user_activity_sql(categorised=True),
        "user_activity_uncategorised": user_activity_sql(categorised=False),
        "item_popularity": item_popularity_sql(),
    }


@dataclass(frozen=True)
class _DayInputs:
    """What one day's features are computed from: files, and time bounds in epoch microseconds."""

    day: date
    event_files: list[Path]
    item_file: Path | None

    @property
    def day_end(self) -> int:
        return epoch_us(self.day + timedelta(days=1))

    def bounds(self) -> dict[str, int]:
        """The day's end and the starts of its windows (a query binds those it uses)."""
        starts = {f"start_{n}d": epoch_us(self.day - timedelta(days=n - 1)) for n in _WINDOWS}
        return {"day_end": self.day_end, **starts}


def _day_inputs(settings: Settings, dataset: str, day: date) -> _DayInputs:
    """The curated partitions of D-29..D that exist, and the item snapshot as of the end of D."""
    window = [day - timedelta(days=back) for back in range(WINDOW_DAYS - 1, -1, -1)]
    event_files = [
        path
        for d in window
        if (
            path := partition_dir(settings.curated_dir, dataset, "interactions", d) / CURATED_FILE
        ).exists()
    ]
    # The features of D are stamped D + 1, so the snapshot dated D + 1 (as of the end of D: the
    # ingest dates snapshots by their interval's end) is known when they are, and no later one is.
    snapshot = latest_snapshot(settings, dataset, "items", day + timedelta(days=1))
    return _DayInputs(day, event_files, snapshot)


def latest_snapshot(settings: Settings, dataset: str, table: str, as_of: date) -> Path | None:
    """The curated snapshot of an attribute table dated `as_of` or earlier, if any.

    A snapshot dated X describes the table as of midnight X (the end of the interval it came
    with), so it is known from X on.
    """
    candidates = [
        folder / CURATED_FILE
        for folder in list_partitions(settings.curated_dir, dataset, table)
        if folder.name.removeprefix("date=") <= as_of.isoformat()
        and (folder / CURATED_FILE).exists()
    ]
    return candidates[-1] if candidates else None


def _user_activity(engine: Engine, inputs: _DayInputs) -> pa.Table:
    engine.register("event_files", inputs.event_files)
    if inputs.item_file is not None:
        engine.register("item_file", [inputs.item_file])
    sql = user_activity_sql(categorised=inputs.item_file is not None)
    result = engine.query(sql, inputs.bounds())
    return with_timestamp(result, inputs.day_end, USER_ACTIVITY_SCHEMA)


def _item_popularity(engine: Engine, inputs: _DayInputs) -> pa.Table:
    engine.register("event_files", inputs.event_files)
    result = engine.query(item_popularity_sql(), inputs.bounds())
    return with_timestamp(result, inputs.day_end, ITEM_POPULARITY_SCHEMA)


def _user_history(engine: Engine, settings: Settings, dataset: str, day: date) -> Path:
    """Write day D's history, extended from D-1's partition where that is up to date."""
    folder = feature_dir(settings, dataset, "user_history")
    previous = folder / f"date={(day - timedelta(days=1)).isoformat()}" / FEATURE_FILE
    inputs = history_inputs(settings, dataset, day, previous)
    day_end = epoch_us(day + timedelta(days=1))
    table = user_history(engine, inputs, epoch_us(day), day_end)
    if inputs.previous is None:
        log.info(
            "user_history %s %s: from %d curated partitions", dataset, day, len(inputs.event_files)
        )
    final = folder / f"date={day.isoformat()}" / FEATURE_FILE
    return write_parquet_atomic(with_timestamp(table, day_end, USER_HISTORY_FILE_SCHEMA), final)


def with_timestamp(result: pa.Table, epoch_us: int, schema: pa.Schema) -> pa.Table:
    """The query's columns, plus event_timestamp = `epoch_us`, cast to the view's fixed schema.

    The one place an engine's result is normalised: each engine's Arrow types (Spark's int32 or
    its list fields named `element`, DuckDB's) become the view's, so both write the same file.
    One chunk, built column by column: pyarrow writes row groups along chunk boundaries, so
    however the engine batched its result, the same rows give the same bytes.
    """
    rows = result.num_rows
    stamp = pa.array(np.full(rows, epoch_us, dtype=np.int64)).cast(TIMESTAMP)
    columns = [
        stamp if f.name == "event_timestamp" else result.column(f.name).cast(f.type) for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema).combine_chunks()


def epoch_us(day: date) -> int:
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000


__all__ = [
    "CATEGORIES_SQL",
    "FEATURE_FILE",
    "ITEM_POPULARITY_SCHEMA",
    "NO_CATEGORIES_SQL",
    "SCHEMAS",
    "TIMESTAMP",
    "USER_ACTIVITY_SCHEMA",
    "USER_HISTORY_FILE_SCHEMA",
    "USER_HISTORY_SCHEMA",
    "build_feature_tables",
    "epoch_us",
    "feature_dir",
    "item_popularity_sql",
    "latest_snapshot",
    "queries",
    "user_activity_sql",
    "with_timestamp",
]
