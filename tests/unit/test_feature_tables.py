"""Daily feature tables: exact values on a hand-computed shop, the point-in-time rule, reruns."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from features.etl import run_etl
from features.feature_tables import (
    ITEM_POPULARITY_SCHEMA,
    USER_ACTIVITY_SCHEMA,
    USER_HISTORY_FILE_SCHEMA,
    build_feature_tables,
    feature_dir,
)
from features.storage import Interval

HEADER = "user_id,item_id,timestamp,event_type,price,quantity\n"
HISTORY = Interval.parse("2024-02-09", "2024-03-11")  # D-30 .. D for D = 2024-03-10
D = Interval.parse("2024-03-10", "2024-03-11")
NEXT_DAY = Interval.parse("2024-03-11", "2024-03-12")
EVENTS = (
    "u6,i1,2024-02-09T23:00:00Z,view,,\n"  # D-30: outside D's window
    "u3,i5,2024-02-25T00:00:00Z,view,,\n"  # D-14: in 30 days, before the trend's prior week
    "u5,i3,2024-02-25T06:00:00Z,view,,\n"  # D-14 again: not in i3's prior week either
    "u3,x99,2024-02-25T12:00:00Z,view,,\n"  # an item no snapshot knows
    "u1,i1,2024-02-26T10:00:00Z,view,,\n"  # D-13: first moment of the prior week
    "u1,i2,2024-03-02T09:00:00Z,view,,\n"
    "u5,i3,2024-03-03T23:59:59Z,view,,\n"  # the last second before the 7 days
    "u5,i3,2024-03-04T00:00:00Z,view,,\n"  # the first second of the 7 days
    "u1,i1,2024-03-05T12:00:00Z,purchase,10.0,1\n"
    "u4,i1,2024-03-06T12:00:00Z,purchase,20.0,2\n"
    "u4,i1,2024-03-07T12:00:00Z,view,6.0,\n"  # a price shown counts in the mean price
    "u1,i3,2024-03-08T08:00:00Z,view,,\n"
    "u4,i1,2024-03-10T01:00:00Z,view,,\n"
    "u1,i2,2024-03-10T20:00:00Z,view,,\n"
    "u1,i4,2024-03-10T20:00:00Z,add_to_cart,,\n"  # same moment as i2: item_id breaks the tie
    # u2 touches 25 distinct items on D-1, every half hour from midnight to noon
    + "".join(
        f"u2,x{k:02d},2024-03-09T{k // 2:02d}:{30 * (k % 2):02d}:00Z,view,,\n" for k in range(25)
    )
)
ITEMS = (
    "item_id,name,category,colour\n"
    "i1,Green tea,Drinks|Tea,green\n"
    "i2,Bread,Food,brown\n"
    "i3,Juice,Drinks,orange\n"
    "i4,Crisps,Food|Snacks,yellow\n"
    "i5,Novel,Books,white\n"
)


def _curate(settings, land_raw) -> None:
    """The shop's history up to the end of D, and an item snapshot as of 2024-03-01."""
    land_raw(HEADER + EVENTS, interval=HISTORY)
    run_etl(settings, "shop", "interactions", HISTORY)
    snapshot = Interval.parse("2024-02-29", "2024-03-01")  # a snapshot is keyed by its end
    land_raw(ITEMS, table="items", interval=snapshot)
    run_etl(settings, "shop", "items", snapshot)


def _rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def _by(rows: list[dict], key: str) -> dict[str, dict]:
    return {row[key]: row for row in rows}


def _digest(paths: list[Path]) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _features(settings) -> list[Path]:
    return sorted((settings.data_dir / "features").rglob("*.parquet"))


def test_user_activity_of_a_hand_computed_day(settings, land_raw):
    _curate(settings, land_raw)
    written = build_feature_tables(settings, "shop", D)
    path = feature_dir(settings, "shop", "user_activity") / "date=2024-03-10" / "part-0.parquet"
    assert written["user_activity"] == [path]
    rows = _rows(path)
    assert [r["user_id"] for r in rows] == ["u1", "u2", "u3", "u4", "u5"]  # u6 is 30 days old
    users = _by(rows, "user_id")
    end_of_d = datetime(2024, 3, 11, tzinfo=UTC)
    assert {r["event_timestamp"] for r in rows} == {end_of_d}

    def counts(user: str) -> tuple:
        row = users[user]
        return (row["events_1d"], row["events_7d"], row["events_30d"], row["purchases_30d"])

    assert counts("u1") == (2, 4, 6, 1)
    assert counts("u2") == (0, 25, 25, 0)
    assert counts("u3") == (0, 0, 2, 0)
    assert counts("u4") == (1, 3, 3, 1)
    assert counts("u5") == (0, 1, 3, 0)  # 23:59:59 on D-7 is outside the 7 days, midnight inside

    since = {u: r["days_since_last_event"] for u, r in users.items()}
    assert since == {"u1": 4 / 24, "u2": 1.5, "u3": 14.5, "u4": 23 / 24, "u5": 7.0}

    # distinct, most recent first, a tie on time ordered by item id, at most 20
    assert users["u1"]["last_item_ids"] == ["i2", "i4", "i3", "i1"]
    assert users["u2"]["last_item_ids"] == [f"x{k:02d}" for k in range(24, 4, -1)]
    assert users["u3"]["last_item_ids"] == ["x99", "i5"]

    top = {u: (r["top_category"], r["top_category_share"]) for u, r in users.items()}
    assert top == {
        "u1": ("Drinks", 0.5),  # Drinks 3 (i1 twice, i3), Food 3 (i2 twice, i4): alphabetical
        "u2": (None, None),  # no snapshot knows its items
        "u3": ("Books", 1.0),  # the share counts only events whose item has a category
        "u4": ("Drinks", 1.0),
        "u5": ("Drinks", 1.0),
    }


def test_item_popularity_of_a_hand_computed_day(settings, land_raw):
    _curate(settings, land_raw)
    written = build_feature_tables(settings, "shop", D)
    rows = _rows(written["item_popularity"][0])
    ids = [r["item_id"] for r in rows]
    assert ids == sorted(ids) and len(ids) == 5 + 25 + 1
    assert {r["event_timestamp"] for r in rows} == {datetime(2024, 3, 11, tzinfo=UTC)}
    columns = ("events_1d", "events_7d", "events_30d", "purchases_7d", "trend_7d", "mean_price_7d")
    items = {r["item_id"]: tuple(r[c] for c in columns) for r in rows}
    assert items["i1"] == (1, 4, 5, 2, 4 / (1 + 1), (10.0 + 20.0 + 6.0) / 3)  # not u6's, D-30
    assert items["i2"] == (1, 1, 2, 0, 1 / (1 + 1), None)
    assert items["i3"] == (0, 2, 4, 0, 2 / (1 + 1), None)
    assert items["i4"] == (1, 1, 1, 0, 1.0, None)
    assert items["i5"] == (0, 0, 1, 0, 0.0, None)  # D-14 is not in the prior week D-13..D-7
    assert items["x00"] == (0, 1, 1, 0, 1.0, None)


def test_no_feature_uses_an_event_at_or_after_the_end_of_the_day(settings, land_raw):
    _curate(settings, land_raw)
    first = build_feature_tables(settings, "shop", D)
    before = _digest([p for paths in first.values() for p in paths])

    # The next day: an event at its very first microsecond, a new user, a new item snapshot.
    land_raw(
        HEADER + "u1,i2,2024-03-11T00:00:00Z,purchase,5.0,1\nu7,i9,2024-03-11T06:00:00Z,view,,\n",
        interval=NEXT_DAY,
    )
    run_etl(settings, "shop", "interactions", NEXT_DAY)
    # a snapshot as of the end of D+1 (dated D+2): D+1 may use it, D may not
    land_raw(ITEMS.replace("Drinks|Tea", "Zebra|Tea"), table="items", interval=NEXT_DAY)
    run_etl(settings, "shop", "items", NEXT_DAY)

    both = build_feature_tables(settings, "shop", Interval.parse("2024-03-10", "2024-03-12"))
    assert _digest([paths[0] for paths in both.values()]) == before  # day D did not change

    users = _by(_rows(both["user_activity"][1]), "user_id")
    assert users["u1"]["events_1d"] == 1 and users["u1"]["days_since_last_event"] == 1.0
    assert users["u4"]["top_category"] == "Zebra"  # D+1 uses the snapshot as of its end
    assert "u7" in users
    assert {r["event_timestamp"] for r in users.values()} == {datetime(2024, 3, 12, tzinfo=UTC)}


def test_a_day_before_any_item_snapshot_has_no_category(settings, land_raw):
    _curate(settings, land_raw)
    # the first snapshot is dated 2024-03-01 (as of the end of 02-29): 02-28 has none
    written = build_feature_tables(settings, "shop", Interval.parse("2024-02-28", "2024-02-29"))
    users = _by(_rows(written["user_activity"][0]), "user_id")
    assert users["u3"]["top_category"] is None and users["u3"]["top_category_share"] is None
    assert users["u3"]["events_30d"] == 2


def test_rerun_is_byte_identical_and_a_day_does_not_depend_on_its_interval(settings, land_raw):
    _curate(settings, land_raw)
    week = Interval.parse("2024-03-04", "2024-03-11")
    written = build_feature_tables(settings, "shop", week)
    assert [p.parent.name for p in written["item_popularity"]] == [
        f"date=2024-03-{d:02d}" for d in range(4, 11)
    ]
    first = _digest(_features(settings))
    assert len(first) == 3 * 7  # user_activity, item_popularity, user_history
    build_feature_tables(settings, "shop", week)
    assert _digest(_features(settings)) == first
    build_feature_tables(settings, "shop", D)  # one day alone, as a daily run computes it
    assert _digest(_features(settings)) == first
    assert not list(settings.data_dir.rglob("*.tmp"))


def test_a_day_without_events_gets_an_empty_partition_with_the_schema(settings, land_raw):
    _curate(settings, land_raw)
    written = build_feature_tables(settings, "shop", Interval.parse("2024-06-01", "2024-06-02"))
    for view, schema in (
        ("user_activity", USER_ACTIVITY_SCHEMA),
        ("item_popularity", ITEM_POPULARITY_SCHEMA),
    ):
        [path] = written[view]
        assert path == feature_dir(settings, "shop", view) / "date=2024-06-01" / "part-0.parquet"
        table = pq.read_table(path)
        assert table.num_rows == 0
        assert table.schema.equals(schema)


def test_the_schemas_are_fixed(settings, land_raw):
    _curate(settings, land_raw)
    written = build_feature_tables(settings, "shop", D)
    assert pq.read_schema(written["user_activity"][0]).equals(USER_ACTIVITY_SCHEMA)
    assert pq.read_schema(written["item_popularity"][0]).equals(ITEM_POPULARITY_SCHEMA)
    assert pq.read_schema(written["user_history"][0]).equals(USER_HISTORY_FILE_SCHEMA)
    assert str(USER_ACTIVITY_SCHEMA.field("event_timestamp").type) == "timestamp[us, tz=UTC]"


def test_nothing_curated_is_a_clear_error(settings):
    with pytest.raises(FileNotFoundError, match="run the ingest first"):
        build_feature_tables(settings, "shop", D)
    assert not (settings.data_dir / "features").exists()
