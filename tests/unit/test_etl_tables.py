"""The sales and attribute tables get the same treatment as interactions: rules, reasons, counts."""

from __future__ import annotations

import pandas as pd
import pytest

from features.etl import run_etl
from features.storage import Interval

WEEK = Interval.parse("2024-03-04", "2024-03-11")
SALES_HEADER = "item_id,store_id,week_start,price,units,cost,promo,feature\n"
GOOD_SALE = "i1,s1,2024-03-04,2.5,10,1.5,0,0.0\n"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("i2,s1,2024-03-04,2.5,-1,1.5,0,0\n", "units_negative"),
        ("i2,s1,2024-03-04,2.5,10,0,0,0\n", "cost_not_positive"),
        ("i2,s1,2024-03-04,2.5,10,1.5,yes,0\n", "bad_promo"),
        ("i2,s1,2024-03-04,2.5,10,1.5,0,1.5\n", "feature_outside_0_1"),
        ("i2,s1,04/03/2024,2.5,10,1.5,0,0\n", "bad_week_start"),
        ("i2,,2024-03-04,2.5,10,1.5,0,0\n", "missing_store_id"),
        ("i2,s1,2024-03-04,,10,1.5,0,0\n", "missing_price"),
        ("i2,s1,2024-03-04,0,10,1.5,0,0\n", "price_not_positive"),
        ("i2,s1,2024-03-11,2.5,10,1.5,0,0\n", "timestamp_in_future"),
        ("i2,s1,1989-03-04,2.5,10,1.5,0,0\n", "timestamp_before_1990"),
    ],
)
def test_bad_sales_rows_are_quarantined(settings, land_raw, line, reason):
    land_raw(SALES_HEADER + GOOD_SALE + line, table="sales", interval=WEEK)
    summary = run_etl(settings, "shop", "sales", WEEK)
    assert (summary.rows_in, summary.curated) == (2, 1)
    assert summary.quarantined_by_reason == {reason: 1}


def test_sales_partitions_are_typed(settings, land_raw):
    land_raw(SALES_HEADER + GOOD_SALE, table="sales", interval=WEEK)
    summary = run_etl(settings, "shop", "sales", WEEK)
    frame = pd.read_parquet(next(p for p in summary.curated_partitions if "2024-03-04" in p))
    assert frame.to_dict("records") == [
        {
            "item_id": "i1",
            "store_id": "s1",
            "week_start": pd.Timestamp("2024-03-04").date(),
            "price": 2.5,
            "units": 10.0,
            "cost": 1.5,
            "promo": False,
            "feature": 0.0,
        }
    ]


def test_attribute_snapshot_keeps_extra_columns_and_rejects_bad_ids(settings, land_raw):
    land_raw(
        "item_id,name,category,colour\ni1,Tea,drinks,green\n,Nameless,food,red\n"
        "i1,Tea,drinks,green\ni1,Coffee,drinks,brown\n",
        table="items",
        interval=WEEK,
        name="items.csv",
    )
    summary = run_etl(settings, "shop", "items", WEEK)
    frame = pd.read_parquet(summary.curated_partitions[0])
    assert frame.to_dict("records") == [
        {"item_id": "i1", "name": "Tea", "category": "drinks", "colour": "green"}
    ]
    assert summary.duplicates == 1
    assert summary.quarantined_by_reason == {"conflicting_duplicate": 1, "missing_item_id": 1}
    assert "date=2024-03-11" in summary.curated_partitions[0]  # a snapshot as of the end


@pytest.mark.parametrize(
    ("start", "end", "problem"),
    [
        ("2024-03-01T06:00:00+00:00", "2024-03-02T06:00:00+00:00", "midnight UTC"),
        ("2024-03-01T00:00:00", "2024-03-01T01:00:00", "midnight UTC"),
        ("2024-03-02", "2024-03-01", "empty data interval"),
    ],
)
def test_intervals_must_be_whole_utc_days(start, end, problem):
    with pytest.raises(ValueError, match=problem):
        Interval.parse(start, end)


def test_an_interval_given_in_another_zone_is_converted_to_utc():
    interval = Interval.parse("2024-03-01T02:00:00+02:00", "2024-03-02T02:00:00+02:00")
    assert interval.key == "2024-03-01"
    assert interval.start.utcoffset().total_seconds() == 0
