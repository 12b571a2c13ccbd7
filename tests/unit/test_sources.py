"""The real data sets arrive whole and in the canonical schemas; a shop's file is recognised."""

from __future__ import annotations

import pandas as pd
import pytest

from core.schemas import EVENT_TYPES, INTERACTIONS, SALES
from features.landing import prepared_path
from features.sources import Source, resolve


@pytest.fixture(scope="module")
def movielens(prepared_settings):
    return {
        t: pd.read_parquet(prepared_path(prepared_settings, "movielens", t))
        for t in ("interactions", "items")
    }


@pytest.fixture(scope="module")
def orange_juice(prepared_settings):
    return {
        t: pd.read_parquet(prepared_path(prepared_settings, "orange_juice", t))
        for t in ("sales", "items", "stores")
    }


def test_movielens_is_the_full_ml_100k(movielens):
    events = movielens["interactions"]
    assert len(events) == 100_000
    assert events["user_id"].nunique() == 943
    assert events["item_id"].nunique() == 1_682
    assert len(movielens["items"]) == 1_682
    assert str(events["timestamp"].min().date()) == "1997-09-20"
    assert str(events["timestamp"].max().date()) == "1998-04-22"
    assert set(events["event_type"]) == {"rating"}
    assert events["rating"].between(1, 5).all()
    assert set(INTERACTIONS.required) <= set(events.columns)
    assert movielens["items"].loc[0, "category"] == "Animation|Children's|Comedy"


def test_orange_juice_is_dominicks_full_panel(orange_juice):
    sales = orange_juice["sales"]
    assert len(sales) == 106_139
    assert sales["store_id"].nunique() == 83
    assert sales["item_id"].nunique() == 11
    assert sales["week_start"].nunique() == 121  # weeks 40 to 160
    assert str(sales["week_start"].min().date()) == "1990-06-14"  # week 40, a Thursday
    assert (sales["week_start"].dt.dayofweek == 3).all()
    assert (sales["price"] > 0).all() and (sales["units"] >= 1).all()
    assert (sales["cost"] <= sales["price"]).all()
    assert set(SALES.required) <= set(sales.columns)
    assert len(orange_juice["stores"]) == 83
    assert orange_juice["items"]["name"].str.contains("Tropicana").sum() == 3


def test_orange_juice_is_priced_per_carton_in_whole_cents(orange_juice):
    """The source's dollars per ounce times each brand's carton size: what a shopper paid."""
    sales = orange_juice["sales"]
    cents = sales["price"] * 100
    assert (abs(cents - cents.round()) < 1e-6).mean() > 0.95  # 95.3 %: the rest, weekly averages
    assert sales["price"].between(0.5, 6.0).all()  # $0.52 to $5.82 a carton
    median = sales.groupby("item_id")["price"].median()
    assert (median["1"], median["2"], median["11"]) == pytest.approx((2.99, 4.75, 3.59))
    assert (sales["cost"] / sales["price"]).between(0, 1).all()  # the margin is scale-free


def test_simulator_source_writes_its_ground_truth(prepared_settings):
    folder = prepared_settings.sources_dir / "simulator"
    events = pd.read_parquet(folder / "interactions.parquet")
    assert set(events["event_type"]) <= set(EVENT_TYPES)
    assert abs(len(events) - 20_000) <= 400
    assert (folder / "truth" / "truth.json").exists()
    truth = pd.read_parquet(folder / "truth" / "items.parquet")
    assert (truth["elasticity"] < -1).all()


def test_resolve_builtin_and_file_sources(tmp_path):
    assert resolve("movielens") == Source("movielens")
    export = tmp_path / "My Shop export.csv"
    export.write_text("user_id,item_id,timestamp,event_type\n")
    source = resolve(str(export))
    assert (source.dataset, source.file) == ("My_Shop_export", str(export.resolve()))


def test_a_file_per_interval_is_named_by_placeholders(tmp_path):
    from datetime import UTC, datetime

    pattern = str(tmp_path / "events_{start:%Y-%m-%d}.csv")
    (tmp_path / "events_2024-03-01.csv").write_text("user_id,item_id,timestamp,event_type\n")
    source = resolve(pattern)
    assert source.dataset == "events"
    day = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 2, tzinfo=UTC)
    assert source.file_for(*day) == tmp_path / "events_2024-03-01.csv"
    with pytest.raises(FileNotFoundError, match=r"events_2024-03-02\.csv"):
        source.file_for(day[1], datetime(2024, 3, 3, tzinfo=UTC))


@pytest.mark.parametrize(
    ("setting", "error", "message"),
    [
        ("amazon", ValueError, "neither a built-in source"),
        ("/nowhere/events.csv", FileNotFoundError, "does not exist"),
    ],
)
def test_resolve_rejects_unknown_sources(setting, error, message):
    with pytest.raises(error, match=message):
        resolve(setting)
