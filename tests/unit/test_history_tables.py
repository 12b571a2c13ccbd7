"""The user_history feature table: a recount of the events before the end of each day, the same
bytes whether a day extends the day before or starts from every curated day, the cap."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from features import history_tables
from features.etl import run_etl
from features.feature_tables import (
    USER_HISTORY_FILE_SCHEMA,
    build_feature_tables,
    feature_dir,
)
from features.history_tables import HISTORY_ITEMS, history_inputs
from features.storage import Interval

HEADER = "user_id,item_id,timestamp,event_type,price,quantity\n"
FORTNIGHT = Interval.parse("2024-03-01", "2024-03-15")
QUIET = ("2024-03-06", "2024-03-07")  # days without a single event


def _shop_events(seed: int = 7, n: int = 300) -> list[str]:
    """Random events of six users over the fortnight but its quiet days, with ties on time and
    events at the very first moment of a day."""
    rng = np.random.default_rng(seed)
    days = [d for d in FORTNIGHT.days() if d.isoformat() not in QUIET]
    lines = []
    for _ in range(n):
        day = days[rng.integers(0, len(days))]
        moment = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
            seconds=int(rng.choice([0, rng.integers(0, 86_400)]))  # many at midnight: ties
        )
        user, item = f"u{rng.integers(0, 6)}", f"i{rng.integers(0, 30):02d}"
        lines.append(f"{user},{item},{moment:%Y-%m-%dT%H:%M:%SZ},view,,")
    return lines


EVENTS = _shop_events()


@pytest.fixture
def shop(settings, land_raw):
    land_raw(HEADER + "\n".join(EVENTS) + "\n", interval=FORTNIGHT)
    run_etl(settings, "shop", "interactions", FORTNIGHT)
    return settings


def _partition(settings, day: date) -> Path:
    return feature_dir(settings, "shop", "user_history") / f"date={day.isoformat()}/part-0.parquet"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _curated(settings) -> pd.DataFrame:
    parts = sorted((settings.curated_dir / "shop" / "interactions").glob("date=*/part-0.parquet"))
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


def _recount(events: pd.DataFrame, day: date, cap: int) -> dict[str, tuple[list[str], int]]:
    """user -> (the capped items, the count of all), from the events strictly before D + 1."""
    end = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)
    last = events[events.timestamp < end].groupby(["user_id", "item_id"]).timestamp.max()
    found = {}
    for user, touches in last.reset_index().groupby("user_id"):
        ordered = touches.sort_values(["timestamp", "item_id"], ascending=[False, True])
        found[user] = (ordered.item_id.tolist()[:cap], len(ordered))
    return found


def test_a_hand_computed_history(settings, land_raw):
    days = Interval.parse("2024-02-29", "2024-03-05")
    land_raw(
        HEADER
        + "u1,i1,2024-03-01T08:00:00Z,view,,\n"
        + "u1,i3,2024-03-01T09:00:00Z,add_to_cart,,\n"
        + "u1,i2,2024-03-01T09:00:00Z,view,,\n"  # the same moment as i3: item_id orders them
        + "u2,i1,2024-03-01T23:59:59Z,view,,\n"
        + "u2,i5,2024-03-02T00:00:00Z,view,,\n"  # the first moment of 03-02: not in 03-01's
        + "u1,i1,2024-03-02T10:00:00Z,purchase,5.0,1\n"  # touched again: back to the front
        + "u3,i2,2024-03-04T01:00:00Z,view,,\n",  # nothing happens on 03-03
        interval=days,
    )
    run_etl(settings, "shop", "interactions", days)
    written = build_feature_tables(settings, "shop", days)["user_history"]
    assert written == [_partition(settings, d) for d in days.days()]

    def histories(day: date) -> dict[str, tuple]:
        rows = pq.read_table(_partition(settings, day)).to_pylist()
        assert {r["event_timestamp"] for r in rows} <= {
            datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        }
        return {r["user_id"]: (r["history_item_ids"], r["history_length"]) for r in rows}

    assert histories(date(2024, 2, 29)) == {}  # before any event: empty, with the schema
    assert histories(date(2024, 3, 1)) == {"u1": (["i2", "i3", "i1"], 3), "u2": (["i1"], 1)}
    second = {"u1": (["i1", "i2", "i3"], 3), "u2": (["i5", "i1"], 2)}
    assert histories(date(2024, 3, 2)) == second
    assert histories(date(2024, 3, 3)) == second  # a quiet day carries every user forward
    assert histories(date(2024, 3, 4)) == {**second, "u3": (["i2"], 1)}
    for day in days.days():
        assert pq.read_schema(_partition(settings, day)).equals(USER_HISTORY_FILE_SCHEMA)


@pytest.mark.parametrize("cap", [HISTORY_ITEMS, 3])
def test_every_day_is_a_recount_of_the_events_before_its_end(shop, monkeypatch, cap):
    monkeypatch.setattr(history_tables, "HISTORY_ITEMS", cap)
    build_feature_tables(shop, "shop", FORTNIGHT)
    events = _curated(shop)
    assert (events.timestamp.dt.strftime("%H:%M:%S") == "00:00:00").sum() > 50  # boundaries
    for day in FORTNIGHT.days():
        rows = pq.read_table(_partition(shop, day)).to_pylist()
        assert [r["user_id"] for r in rows] == sorted(r["user_id"] for r in rows)
        found = {r["user_id"]: (r["history_item_ids"], r["history_length"]) for r in rows}
        assert found == _recount(events, day, cap), day
    assert max(length for _, length in found.values()) > 3  # so a cap of 3 cuts histories


@pytest.mark.parametrize("cap", [HISTORY_ITEMS, 3])
def test_extending_yesterday_gives_the_bytes_of_a_recount_from_every_day(shop, monkeypatch, cap):
    monkeypatch.setattr(history_tables, "HISTORY_ITEMS", cap)
    build_feature_tables(shop, "shop", FORTNIGHT)  # day by day, each extending the one before
    chained = {day: _digest(_partition(shop, day)) for day in FORTNIGHT.days()}

    # 03-06 and 03-08: the first quiet day, the day after the quiet ones; 03-14: the last day
    for day in (date(2024, 3, 3), date(2024, 3, 6), date(2024, 3, 8), date(2024, 3, 14)):
        yesterday = _partition(shop, day - timedelta(days=1))
        assert history_inputs(shop, "shop", day, yesterday).previous == yesterday
        yesterday.unlink()
        inputs = history_inputs(shop, "shop", day, yesterday)
        assert inputs.previous is None  # so every curated day up to D, quiet ones empty
        assert [p.parent.name for p in inputs.event_files] == [
            f"date={d.isoformat()}" for d in FORTNIGHT.days() if d <= day
        ]
        build_feature_tables(shop, "shop", Interval.parse(day, day + timedelta(days=1)))
        assert _digest(_partition(shop, day)) == chained[day], day

    build_feature_tables(shop, "shop", FORTNIGHT)  # a rerun is byte-identical
    assert {day: _digest(_partition(shop, day)) for day in FORTNIGHT.days()} == chained
    assert not list(shop.data_dir.rglob("*.tmp"))


def test_a_day_curated_again_is_not_extended_from_a_stale_history(shop, land_raw):
    build_feature_tables(shop, "shop", FORTNIGHT)
    # A correction of 03-03 arrives after its features were built: one more event that day.
    late = Interval.parse("2024-03-03", "2024-03-04")
    same_day = [e for e in EVENTS if ",2024-03-03T" in e]
    land_raw(
        HEADER + "\n".join([*same_day, "u9,i77,2024-03-03T12:00:00Z,view,,"]) + "\n", interval=late
    )
    run_etl(shop, "shop", "interactions", late)
    corrected = shop.curated_dir / "shop" / "interactions" / "date=2024-03-03" / "part-0.parquet"
    newest = max(p.stat().st_mtime_ns for p in feature_dir(shop, "shop", "user_history").rglob("*"))
    os.utime(corrected, ns=(newest + 1_000_000_000, newest + 1_000_000_000))  # coarse clocks

    day = date(2024, 3, 10)
    yesterday = _partition(shop, day - timedelta(days=1))
    assert history_inputs(shop, "shop", day, yesterday).previous is None  # 03-09 lacks u9
    build_feature_tables(shop, "shop", Interval.parse(day, day + timedelta(days=1)))
    rows = {r["user_id"]: r for r in pq.read_table(_partition(shop, day)).to_pylist()}
    assert rows["u9"]["history_item_ids"] == ["i77"]
    recount = _recount(_curated(shop), day, HISTORY_ITEMS)
    assert {u: (r["history_item_ids"], r["history_length"]) for u, r in rows.items()} == recount


def test_the_history_serves_the_latest_thousand_items_and_counts_them_all(settings, land_raw):
    two_days = Interval.parse("2024-03-01", "2024-03-03")
    start = datetime(2024, 3, 1, tzinfo=UTC)
    many = [
        f"u1,x{k:04d},{start + timedelta(seconds=k):%Y-%m-%dT%H:%M:%SZ},view,,"
        for k in range(HISTORY_ITEMS + 5)
    ]
    # the next day: the oldest item again (beyond the cap), then one never seen
    again = ["u1,x0000,2024-03-02T10:00:00Z,view,,", "u1,new,2024-03-02T11:00:00Z,view,,"]
    land_raw(HEADER + "\n".join(many + again) + "\n", interval=two_days)
    run_etl(settings, "shop", "interactions", two_days)
    build_feature_tables(settings, "shop", two_days)

    [first] = pq.read_table(_partition(settings, date(2024, 3, 1))).to_pylist()
    newest_first = [f"x{k:04d}" for k in range(HISTORY_ITEMS + 4, -1, -1)]
    assert first["history_item_ids"] == newest_first[:HISTORY_ITEMS]
    assert first["history_length"] == HISTORY_ITEMS + 5
    assert first["history_older_item_ids"] == newest_first[HISTORY_ITEMS:]

    second_path = _partition(settings, date(2024, 3, 2))
    [second] = pq.read_table(second_path).to_pylist()
    expected = ["new", "x0000", *newest_first[: HISTORY_ITEMS - 2]]
    assert second["history_item_ids"] == expected
    assert second["history_length"] == HISTORY_ITEMS + 6  # x0000 is not counted twice
    extended = _digest(second_path)
    _partition(settings, date(2024, 3, 1)).unlink()
    build_feature_tables(settings, "shop", Interval.parse("2024-03-02", "2024-03-03"))
    assert _digest(second_path) == extended
