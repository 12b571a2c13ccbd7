"""The ETL reads the event stream's day files beside what was landed: the same rules, each day in
exactly one interval, and an event delivered twice (or by the stream and an export) counted once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.etl import NothingLandedError, run_etl
from features.storage import Interval, stream_partition_dir
from features.stream.zones import EVENT_SCHEMA

WEEK = Interval.parse("2024-03-01", "2024-03-08")
STREAM_SCHEMA = EVENT_SCHEMA  # what the consumer writes


def event(event_id: str, at: datetime, **values) -> dict:
    return {
        "event_id": event_id,
        "user_id": "u1",
        "item_id": "i1",
        "timestamp": at,
        "event_type": "view",
        "price": None,
        "quantity": None,
        "rating": None,
        "request_id": None,
    } | values


def write_stream(settings, day: str, name: str, events: list[dict]) -> Path:
    """A batch as the stream's consumer appends it: real parquet, typed as the consumer types it."""
    folder = stream_partition_dir(settings.raw_dir, "shop", day)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    pq.write_table(pa.Table.from_pylist(events, schema=STREAM_SCHEMA), path)
    return path


def curated(summary) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in summary.curated_partitions], ignore_index=True)


def test_an_interval_with_only_stream_files_curates_them(settings):
    with pytest.raises(NothingLandedError, match="stream"):
        run_etl(settings, "shop", "interactions", WEEK)
    first = write_stream(
        settings,
        "2024-03-01",
        "0001.parquet",
        [
            event("e1", datetime(2024, 3, 1, 10, 0, 0, 123456, tzinfo=UTC), request_id="r-1"),
            event(
                "e2",
                datetime(2024, 3, 1, 11, tzinfo=UTC),
                event_type="purchase",
                price=3.5,
                quantity=2,
            ),
            event("e3", datetime(2024, 3, 1, 12, tzinfo=UTC), price=-1.0),  # quarantined
        ],
    )
    second = write_stream(
        settings,
        "2024-03-03",
        "0001.parquet",
        [event("e4", datetime(2024, 3, 3, 9, tzinfo=UTC), event_type="rating", rating=4.0)],
    )
    (first.parent / ".0002.parquet.abc.tmp").write_bytes(b"")  # a writer's temporary file
    summary = run_etl(settings, "shop", "interactions", WEEK)
    assert summary.raw_files == [str(first), str(second)]
    assert (summary.rows_in, summary.curated, summary.quarantined) == (4, 3, 1)
    assert summary.quarantined_by_reason == {"price_not_positive": 1}
    assert summary.reconciles
    rows = curated(summary).set_index("event_id")
    # microseconds, nullable ints and floats and the answer's id survive the reading
    assert rows.loc["e1", "timestamp"] == pd.Timestamp("2024-03-01T10:00:00.123456Z")
    assert rows.loc["e1", "request_id"] == "r-1"
    assert pd.isna(rows.loc["e1", "quantity"]) and pd.isna(rows.loc["e1", "price"])
    assert (rows.loc["e2", "price"], rows.loc["e2", "quantity"]) == (3.5, 2)
    assert rows.loc["e4", "rating"] == 4.0
    schema = pq.read_schema(summary.curated_partitions[0])
    assert str(schema.field("timestamp").type) == "timestamp[us, tz=UTC]"
    assert str(schema.field("quantity").type) == "int64"
    assert str(schema.field("event_id").type) == "string"


def test_an_event_in_the_stream_and_again_in_an_export_is_curated_once(settings, land_raw):
    write_stream(
        settings,
        "2024-03-02",
        "0001.parquet",
        [
            event(
                "e1",
                datetime(2024, 3, 2, 10, 30, tzinfo=UTC),
                event_type="purchase",
                price=3.5,
                quantity=1,
                request_id="r-9",
            ),
            event("e2", datetime(2024, 3, 2, 11, tzinfo=UTC)),
        ],
    )
    # The shop's nightly export renders the same event its own way (and knows no request id).
    land_raw(
        "event_id,user_id,item_id,timestamp,event_type,price,quantity\n"
        "e1,u1,i1,2024-03-02T10:30:00,purchase,3.50,1\n"
        "e9,u2,i2,2024-03-02T12:00:00Z,view,,\n",
        interval=WEEK,
    )
    summary = run_etl(settings, "shop", "interactions", WEEK)
    assert (summary.rows_in, summary.curated, summary.duplicates, summary.quarantined) == (
        4,
        3,
        1,
        0,
    )
    assert summary.reconciles
    rows = curated(summary)
    assert sorted(rows.event_id) == ["e1", "e2", "e9"]
    assert len(summary.raw_files) == 2 and summary.raw_files[1].endswith("0001.parquet")


def test_a_repeated_event_id_with_other_values_is_still_one_event(settings, land_raw):
    land_raw(
        "event_id,user_id,item_id,timestamp,event_type,price,quantity\n"
        "e1,u1,i1,2024-03-01T10:00:00Z,purchase,3.50,1\n"
        "e1,u1,i1,2024-03-01T10:00:00.000001Z,purchase,3.49,1\n"  # a late, differing copy
        ",u1,i1,2024-03-01T11:00:00Z,view,,\n"  # no event_id: today's rules
        ",u1,i1,2024-03-01T11:00:00Z,view,,\n"  # an exact repeat
        ",u1,i1,2024-03-01T11:00:00Z,view,2.0,\n",  # same key, other values: a conflict
    )
    summary = run_etl(settings, "shop", "interactions", Interval.parse("2024-03-01", "2024-03-02"))
    assert (summary.curated, summary.duplicates, summary.quarantined) == (2, 2, 1)
    assert summary.quarantined_by_reason == {"conflicting_duplicate": 1}
    assert summary.reconciles
    kept = curated(summary)
    assert kept.loc[kept.event_id == "e1", "price"].tolist() == [3.5]  # the first one


def test_an_event_delivered_twice_by_the_stream_is_curated_once(settings):
    twice = event("e1", datetime(2024, 3, 4, 8, tzinfo=UTC), event_type="add_to_cart", quantity=1)
    write_stream(settings, "2024-03-04", "0001.parquet", [twice])
    write_stream(
        settings,
        "2024-03-04",
        "0002.parquet",
        [event("e2", datetime(2024, 3, 4, 9, tzinfo=UTC)), twice],  # redelivered after a nack
    )
    summary = run_etl(settings, "shop", "interactions", WEEK)
    assert (summary.rows_in, summary.curated, summary.duplicates, summary.quarantined) == (
        3,
        2,
        1,
        0,
    )
    assert summary.reconciles
    assert sorted(curated(summary).event_id) == ["e1", "e2"]


def test_stream_files_of_days_outside_the_interval_are_not_read(settings):
    inside = write_stream(
        settings, "2024-03-07", "0001.parquet", [event("e1", datetime(2024, 3, 7, tzinfo=UTC))]
    )
    for day, at in [("2024-02-29", datetime(2024, 2, 29, tzinfo=UTC)), ("2024-03-08", None)]:
        write_stream(
            settings, day, "0001.parquet", [event("x", at or datetime(2024, 3, 8, tzinfo=UTC))]
        )
    summary = run_etl(settings, "shop", "interactions", WEEK)
    assert summary.raw_files == [str(inside)]
    assert (summary.rows_in, summary.curated, summary.quarantined) == (1, 1, 0)
    nothing = Interval.parse("2024-03-10", "2024-03-11")
    with pytest.raises(NothingLandedError):
        run_etl(settings, "shop", "interactions", nothing)


def test_the_stream_belongs_to_the_interactions_table_only(settings, land_raw):
    write_stream(
        settings, "2024-03-01", "0001.parquet", [event("e1", datetime(2024, 3, 1, tzinfo=UTC))]
    )
    with pytest.raises(NothingLandedError):
        run_etl(settings, "shop", "sales", WEEK)
