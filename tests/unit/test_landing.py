"""Landing puts exactly one interval's rows into the raw zone, atomically and repeatably."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from features.ingest import NotProvidedError, ingest, source_of
from features.landing import land
from features.storage import Interval

OCT_1 = Interval.parse("1997-10-01", "1997-10-02")


def test_replay_lands_only_the_interval(prepared_settings):
    landed = land(prepared_settings, "interactions", OCT_1, "movielens")
    rows = pd.read_csv(landed.path)
    assert landed.rows == len(rows) > 0
    times = pd.to_datetime(rows["timestamp"], utc=True)
    assert times.min() >= OCT_1.start and times.max() < OCT_1.end
    everything = pd.read_parquet(
        prepared_settings.sources_dir / "movielens" / "interactions.parquet"
    )
    in_interval = everything["timestamp"].between(OCT_1.start, OCT_1.end, inclusive="left")
    assert landed.rows == int(in_interval.sum())


def test_landing_twice_gives_the_same_bytes(prepared_settings):
    first = land(prepared_settings, "sales", Interval.parse("1991-01-03", "1991-01-10"))
    digest = hashlib.sha256(first.path.read_bytes()).hexdigest()
    again = land(prepared_settings, "sales", Interval.parse("1991-01-03", "1991-01-10"))
    assert hashlib.sha256(again.path.read_bytes()).hexdigest() == digest


def test_a_shops_file_is_landed_verbatim(settings, tmp_path):
    export = tmp_path / "events.csv"
    export.write_bytes(b"user_id,item_id,timestamp,event_type\nu1,i1,2024-03-01T00:00:00Z,view\n")
    landed = land(settings, "interactions", Interval.parse("2024-03-01", "2024-03-02"), str(export))
    assert landed.path.read_bytes() == export.read_bytes()
    assert landed.dataset == "events"


def test_a_shops_file_provides_no_attribute_tables(settings, tmp_path):
    export = tmp_path / "events.csv"
    export.write_text("user_id,item_id,timestamp,event_type\nu1,i1,2024-03-01T00:00:00Z,view\n")
    settings.interactions_source = str(export)
    with pytest.raises(NotProvidedError, match="provides no items table"):
        source_of(settings, "interactions", "items")
    summaries = ingest("interactions", "2024-03-01", "2024-03-02", settings)
    assert [s["table"] for s in summaries] == ["interactions"]
    assert summaries[0]["curated"] == 1


def test_simulated_items_appear_when_introduced(prepared_settings):
    items = pd.read_parquet(prepared_settings.sources_dir / "simulator" / "items.parquet")
    early = land(
        prepared_settings, "items", Interval.parse("2024-01-01", "2024-01-02"), "simulator"
    )
    assert early.rows == int((items["introduced_at"] < pd.Timestamp("2024-01-02")).sum())


def test_landing_before_fetching_says_what_to_run(settings):
    with pytest.raises(FileNotFoundError, match="aisle data fetch"):
        land(settings, "interactions", OCT_1, "movielens")
