"""Every kind of bad input named in the issue: a quarantine row with its reason, or a clear error
naming the file; never a half-written run, never a row lost."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from features.etl import NothingLandedError, run_etl, summary_path
from features.reading import RawFileError
from features.storage import Interval

DAY = Interval.parse("2024-03-01", "2024-03-02")  # the default interval of `land_raw`

HEADER = "user_id,item_id,timestamp,event_type,price,quantity\n"
GOOD = "u1,i1,2024-03-01T10:00:00Z,purchase,9.99,1\n"


def run(settings, table: str = "interactions"):
    return run_etl(settings, "shop", table, DAY)


@pytest.mark.parametrize(
    ("case", "line", "reason"),
    [
        ("too many fields", "u2,i2,2024-03-01T10:00:00Z,view,1.0,1,surplus\n", "malformed_line"),
        ("too few fields", "u2,i2\n", "malformed_line"),
        ("blank line", "\n", "empty_row"),
        ("only separators", ",,,,,\n", "empty_row"),
        ("price is text", "u2,i2,2024-03-01T10:00:00Z,purchase,cheap,1\n", "bad_price"),
        ("price NaN", "u2,i2,2024-03-01T10:00:00Z,purchase,NaN,1\n", "bad_price"),
        ("price inf", "u2,i2,2024-03-01T10:00:00Z,purchase,inf,1\n", "bad_price"),
        ("price zero", "u2,i2,2024-03-01T10:00:00Z,purchase,0,1\n", "price_not_positive"),
        ("price negative", "u2,i2,2024-03-01T10:00:00Z,purchase,-3.5,1\n", "price_not_positive"),
        ("quantity zero", "u2,i2,2024-03-01T10:00:00Z,purchase,2.0,0\n", "quantity_below_one"),
        ("quantity negative", "u2,i2,2024-03-01T10:00:00Z,purchase,2.0,-2\n", "quantity_below_one"),
        ("quantity fractional", "u2,i2,2024-03-01T10:00:00Z,purchase,2.0,1.5\n", "bad_quantity"),
        ("timestamp garbage", "u2,i2,yesterday,view,,\n", "bad_timestamp"),
        ("timestamp before 1990", "u2,i2,1989-12-31T23:59:59Z,view,,\n", "timestamp_before_1990"),
        ("timestamp in the future", "u2,i2,2031-01-01T00:00:00Z,view,,\n", "timestamp_in_future"),
        ("after the interval", "u2,i2,2024-03-02T00:00:00Z,view,,\n", "timestamp_in_future"),
        ("before the interval", "u2,i2,2024-02-29T23:00:00Z,view,,\n", "before_interval"),
        ("unknown event type", "u2,i2,2024-03-01T10:00:00Z,wishlist,,\n", "unknown_event_type"),
        ("missing user", ",i2,2024-03-01T10:00:00Z,view,,\n", "missing_user_id"),
        ("missing timestamp", "u2,i2,,view,,\n", "missing_timestamp"),
        ("non-UTF-8 bytes", b"u2,i2,2024-03-01T10:00:00Z,vi\xffew,,\n", "invalid_utf8"),
    ],
)
def test_bad_row_is_quarantined_with_its_reason(settings, land_raw, case, line, reason):
    line_bytes = line if isinstance(line, bytes) else line.encode()
    land_raw(HEADER.encode() + GOOD.encode() + line_bytes + GOOD.replace("u1", "u3").encode())

    summary = run(settings)

    assert summary.rows_in == 3, case
    assert summary.curated == 2
    assert summary.quarantined_by_reason == {reason: 1}
    quarantine = pd.read_parquet(summary.quarantine_file)
    assert quarantine["reason"].tolist() == [reason]
    assert quarantine["line"].tolist() == [3]  # header is line 1, the good row line 2
    assert quarantine["source_file"].iloc[0].endswith("interactions.csv")
    assert quarantine["raw"].iloc[0]  # the row as it came, so it can be fixed and replayed


def test_row_breaking_several_rules_is_quarantined_once_with_all_reasons(settings, land_raw):
    land_raw(HEADER + "u2,i2,1985-01-01T00:00:00Z,wishlist,-1,0\n")
    summary = run(settings)
    quarantine = pd.read_parquet(summary.quarantine_file)
    assert summary.quarantined == 1
    assert quarantine["reason"].iloc[0] == "unknown_event_type"
    assert set(quarantine["reasons"].iloc[0].split("; ")) == {
        "unknown_event_type",
        "timestamp_before_1990",
        "before_interval",
        "price_not_positive",
        "quantity_below_one",
    }


def test_exact_duplicates_are_removed_and_counted(settings, land_raw):
    land_raw(HEADER + GOOD * 3)
    summary = run(settings)
    counts = (summary.rows_in, summary.curated, summary.duplicates, summary.quarantined)
    assert counts == (3, 1, 2, 0)


def test_same_event_with_other_values_is_quarantined_as_conflict(settings, land_raw):
    land_raw(HEADER + GOOD + GOOD.replace("9.99", "19.99"))
    summary = run(settings)
    quarantine = pd.read_parquet(summary.quarantine_file)
    assert summary.curated == 1
    assert quarantine["reason"].tolist() == ["conflicting_duplicate"]
    assert quarantine["line"].tolist() == [3]
    assert "19.99" in quarantine["raw"].iloc[0]
    kept = pd.read_parquet(summary.curated_partitions[0])
    assert kept["price"].tolist() == [9.99]  # the first occurrence wins


def test_duplicates_across_two_files_of_one_interval(settings, land_raw):
    land_raw(HEADER + GOOD, name="a.csv")
    land_raw(HEADER + GOOD, name="b.csv")
    summary = run(settings)
    assert (summary.curated, summary.duplicates) == (1, 1)


def test_header_only_file_gives_empty_partitions(settings, land_raw):
    land_raw(HEADER)
    summary = run(settings)
    assert (summary.rows_in, summary.curated, summary.quarantined) == (0, 0, 0)
    frame = pd.read_parquet(summary.curated_partitions[0])
    assert frame.empty
    assert "timestamp" in frame.columns  # an empty partition still has the schema


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\n" + GOOD.encode(), "first line is blank"),
        (b"user_id,item_id,event_type\nu1,i1,view\n", "missing required column(s) timestamp"),
        (HEADER.replace("price", "pr\xefce").encode("latin-1"), "header line is not valid UTF-8"),
        (
            b"user_id,item_id,timestamp,event_type,colour\nu1,i1,2024-03-01T10:00:00Z,view,red\n",
            "not in the interactions schema: colour",
        ),
        (b"user_id,user_id,item_id,timestamp,event_type\n", "duplicate column names"),
    ],
)
def test_unreadable_file_is_a_clear_error_naming_it_and_nothing_is_written(
    settings, land_raw, content, message
):
    land_raw(HEADER + GOOD, name="a_good.csv")
    bad = land_raw(content, name="b_bad.csv")

    with pytest.raises(RawFileError) as error:
        run(settings)

    assert str(bad) in str(error.value)
    assert message in str(error.value)
    assert not settings.curated_dir.exists()
    assert not settings.quarantine_dir.exists()
    assert not summary_path(settings, "shop", "interactions", DAY).exists()


def test_extra_columns_are_dropped_and_reported_when_allowed(settings, land_raw):
    land_raw("user_id,item_id,timestamp,event_type,colour\nu1,i1,2024-03-01T10:00:00Z,view,red\n")
    settings.allow_extra_columns = True
    summary = run(settings)
    assert summary.curated == 1
    assert list(summary.dropped_columns.values()) == [["colour"]]
    assert "colour" not in pd.read_parquet(summary.curated_partitions[0]).columns


def test_unsupported_file_type_and_nothing_landed(settings, land_raw):
    with pytest.raises(NothingLandedError, match="land it first"):
        run(settings)
    land_raw("{}", name="events.json")
    with pytest.raises(NothingLandedError):
        run(settings)  # a .json file is not a raw file; it is not picked up either


def test_parquet_raw_file_goes_through_the_same_rules(settings, land_raw, tmp_path):
    frame = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3"],
            "item_id": ["i1", "i2", "i3"],
            "timestamp": pd.to_datetime(["2024-03-01T10:00:00Z"] * 2 + ["1980-01-01T00:00:00Z"]),
            "event_type": ["purchase", "purchase", "view"],
            "price": [9.99, -1.0, None],
            "quantity": [1, 1, None],
        }
    )
    path = tmp_path / "x.parquet"
    frame.to_parquet(path)
    land_raw(path.read_bytes(), name="export.parquet")
    summary = run(settings)
    assert summary.curated == 1
    assert summary.quarantined_by_reason == {"price_not_positive": 1, "timestamp_before_1990": 1}


def test_unix_seconds_and_offsets_are_read_as_utc(settings, land_raw):
    land_raw(
        HEADER
        + "u1,i1,1709287200,view,,\n"  # 2024-03-01T10:00:00Z as unix seconds
        + "u2,i1,2024-03-01T12:00:00+02:00,view,,\n"
        + "u3,i1,2024-03-01 10:00:00,view,,\n"  # no offset: UTC
    )
    summary = run(settings)
    times = pd.read_parquet(summary.curated_partitions[0])["timestamp"]
    assert summary.curated == 3
    assert sorted(times.dt.hour.tolist()) == [10, 10, 10]


def test_summary_file_matches_the_returned_summary(settings, land_raw):
    land_raw(HEADER + GOOD + "u2,i2\n")
    summary = run(settings)
    on_disk = json.loads(summary_path(settings, "shop", "interactions", DAY).read_text())
    assert on_disk == summary.to_dict()
    assert on_disk["reconciles"] is True
