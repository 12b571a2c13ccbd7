"""Pricing features: exact weekly values on a hand-made shop, point-in-time training sets for
`pricing_v1` (lagged demand never includes the label's own week), store attributes generated from
the data, `feast apply` only when the definitions change, and multi-key online lookup."""

from __future__ import annotations

import hashlib
import math
from datetime import date, timedelta

import pandas as pd
import pyarrow.parquet as pq
import pytest

from features import online, store
from features.etl import run_etl
from features.pricing_tables import build_pricing_tables, feature_dir
from features.storage import Interval

DATASET = "shop_sales"
FIRST_WEEK = date(2024, 1, 4)  # a Thursday
WEEKS = [FIRST_WEEK + timedelta(weeks=i) for i in range(6)]
SIX_WEEKS = Interval.parse(WEEKS[0], WEEKS[-1] + timedelta(days=7))
BEFORE = Interval.parse("2024-01-01", WEEKS[0])  # attribute snapshots known from week one
ITEMS = "item_id,name,category\na,Juice A,juice\nb,Juice B,juice|drinks\nc,Bread,bread\n"
STORES = "store_id,name,income,region\ns1,North,10.5,north\ns2,South,9.25,south\n"
HEADER = "item_id,store_id,week_start,price,units,cost,promo,feature\n"


def _price(item: str, store_id: str, week: int) -> float:
    return {"a": 2.0, "b": 3.0, "c": 1.0}[item] + 0.25 * week + (0.5 if store_id == "s2" else 0)


def _units(item: str, store_id: str, week: int) -> float:
    return 100.0 * (week + 1) + {"a": 1, "b": 2, "c": 3}[item] + (50 if store_id == "s2" else 0)


def _sales(skip: tuple[str, str, int] | None = None) -> str:
    rows = [
        f"{i},{s},{w:%Y-%m-%d},{_price(i, s, k)},{_units(i, s, k)},0.5,{k % 2},0.0"
        for k, w in enumerate(WEEKS)
        for i in "abc"
        for s in ("s1", "s2")
        if (i, s, k) != skip and not (i == "c" and s == "s2" and k == 2)  # c/s2 misses week 2
    ]
    return HEADER + "\n".join(rows) + "\n"


@pytest.fixture
def shop(settings, land_raw, tmp_path):
    export = tmp_path / f"{DATASET}.csv"
    export.write_text(HEADER)
    settings.sales_source = str(export)  # the definitions read the dataset name from it
    land_raw(ITEMS, table="items", interval=BEFORE, dataset=DATASET)
    land_raw(STORES, table="stores", interval=BEFORE, dataset=DATASET)
    run_etl(settings, DATASET, "items", BEFORE)
    run_etl(settings, DATASET, "stores", BEFORE)
    land_raw(_sales(), table="sales", interval=SIX_WEEKS, dataset=DATASET)
    run_etl(settings, DATASET, "sales", SIX_WEEKS)
    build_pricing_tables(settings, DATASET, SIX_WEEKS)
    build_pricing_tables(settings, DATASET, BEFORE)  # the store snapshot dated week one
    return settings


def _view(settings, view: str, week: date) -> pd.DataFrame:
    path = feature_dir(settings, DATASET, view) / f"date={week}" / "part-0.parquet"
    return pd.read_parquet(path).set_index(["item_id", "store_id"])


def test_item_price_holds_the_week_and_its_cross_prices(shop):
    week = _view(shop, "item_price", WEEKS[3])
    a = week.loc[("a", "s1")]
    assert a.event_timestamp == pd.Timestamp(WEEKS[3], tz="UTC")  # posted when the week starts
    assert a.price == _price("a", "s1", 3)
    assert a.competitors == 1  # b shares a's first category; c does not
    assert a.competitor_price_mean == pytest.approx(_price("b", "s1", 3))
    assert a.price_index == pytest.approx(_price("a", "s1", 3) / _price("b", "s1", 3))
    assert a.competitor_promo_share == 3 % 2  # b's promo flag that week
    assert a.competitor_feature_mean == 0.0
    assert list(a.category_item_ids) == ["a", "b"]
    assert list(a.category_prices) == [_price("a", "s1", 3), _price("b", "s1", 3)]
    c = week.loc[("c", "s1")]
    assert c.competitors == 0
    assert pd.isna(c.competitor_price_mean) and pd.isna(c.price_index)
    assert pd.isna(c.competitor_promo_share) and pd.isna(c.competitor_feature_mean)
    assert list(c.category_item_ids) == ["c"]


def test_demand_history_summarises_four_weeks_known_at_the_week_end(shop):
    hist = _view(shop, "demand_history", WEEKS[4])
    a = hist.loc[("a", "s1")]
    assert a.event_timestamp == pd.Timestamp(WEEKS[4] + timedelta(days=7), tz="UTC")
    assert a.units_lag1 == _units("a", "s1", 4)
    assert a.price_lag1 == _price("a", "s1", 4)
    assert a.log_units_lag1 == pytest.approx(math.log1p(_units("a", "s1", 4)))
    logs = [math.log1p(_units("a", "s1", k)) for k in (1, 2, 3, 4)]
    assert a.log_units_mean_4w == pytest.approx(sum(logs) / 4)
    assert a.price_mean_4w == pytest.approx(sum(_price("a", "s1", k) for k in (1, 2, 3, 4)) / 4)
    assert a.promo_share_4w == pytest.approx(0.5)  # promo in odd weeks
    assert a.weeks_sold_4w == 4
    assert hist.loc[("c", "s2")].weeks_sold_4w == 3  # no sales in week 2
    assert pd.isna(_view(shop, "demand_history", WEEKS[2]).loc[("c", "s2")].units_lag1)


def test_store_attributes_come_from_the_snapshot(shop):
    path = feature_dir(shop, DATASET, "store_attributes") / f"date={WEEKS[0]}" / "part-0.parquet"
    table = pq.read_table(path)
    assert table.schema.names == ["store_id", "event_timestamp", "income", "region"]
    assert table.column("income").to_pylist() == [10.5, 9.25]


def test_reruns_are_byte_identical_and_clear_weeks_without_sales(shop, land_raw):
    def digests() -> dict[str, str]:
        root = shop.data_dir / "features" / DATASET
        return {
            str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.parquet"))
        }

    before = digests()
    build_pricing_tables(shop, DATASET, SIX_WEEKS)
    assert digests() == before

    last = Interval.parse(WEEKS[-1], WEEKS[-1] + timedelta(days=7))
    land_raw(HEADER, table="sales", interval=last, dataset=DATASET)  # the week was withdrawn
    run_etl(shop, DATASET, "sales", last)
    build_pricing_tables(shop, DATASET, last)
    assert not (feature_dir(shop, DATASET, "item_price") / f"date={WEEKS[-1]}").exists()


@pytest.fixture
def applied(shop):
    first = store.apply(shop)
    assert first.changed and "pricing_v1" in first.objects
    return shop


def _labels() -> pd.DataFrame:
    rows = [
        {"item_id": i, "store_id": s, "event_timestamp": pd.Timestamp(w, tz="UTC"), "week": k}
        for k, w in enumerate(WEEKS)
        for i in "abc"
        for s in ("s1", "s2")
    ]
    return pd.DataFrame(rows)


def test_pricing_training_set_is_point_in_time_correct(applied):
    frame = store.training_set(applied, _labels(), service="pricing_v1")
    assert len(frame) == len(_labels())
    for row in frame.itertuples():
        if (row.item_id, row.store_id, row.week) == ("c", "s2", 2):
            assert pd.isna(row.price)  # no shelf price that week
        else:
            assert row.price == _price(row.item_id, row.store_id, row.week)
        # lagged demand is last week's: the label's own week never reaches its features
        previous = row.week - 1
        if previous < 0 or (row.item_id, row.store_id, previous) == ("c", "s2", 2):
            assert pd.isna(row.units_lag1)
        else:
            assert row.units_lag1 == _units(row.item_id, row.store_id, previous)
        assert row.store_income == {"s1": 10.5, "s2": 9.25}[row.store_id]


def test_apply_runs_only_when_the_definitions_change(applied, land_raw):
    assert not store.apply(applied).changed
    later = Interval.parse(WEEKS[-1], WEEKS[-1] + timedelta(days=7))
    stores = "store_id,name,income,region,size\ns1,North,10.5,north,2\ns2,South,9.25,south,3\n"
    land_raw(stores, table="stores", interval=later, dataset=DATASET)
    run_etl(applied, DATASET, "stores", later)
    build_pricing_tables(applied, DATASET, later)
    again = store.apply(applied)
    assert again.changed  # a new store attribute is a new feature
    view = store.feature_store(applied).get_feature_view("store_attributes_fv")
    assert [f.name for f in view.features] == ["store_income", "store_region", "store_size"]


def test_item_and_store_lookup_online(applied):
    assert store.materialize(applied, SIX_WEEKS, flow="sales") == [
        "item_price_fv",
        "demand_history_fv",
        "store_attributes_fv",
    ]
    found = online.online_features(
        applied,
        "item_price_fv",
        [{"item_id": "a", "store_id": "s2"}, {"item_id": "zz", "store_id": "s1"}],
    )
    assert found.known == [True, False]
    assert found.row(0)["price"] == _price("a", "s2", 5)  # the latest week
    assert found.as_of[0] == pd.Timestamp(WEEKS[5], tz="UTC")
    with pytest.raises(ValueError, match="keyed by"):
        online.online_features(applied, "item_price_fv", ["a"])


def test_unknown_ids_are_a_clear_error_unless_allowed(applied):
    labels = _labels().head(2).assign(item_id=["a", "nope"])
    with pytest.raises(store.TrainingSetError, match=r"appear in no item_price_fv.*nope"):
        store.training_set(applied, labels, service="pricing_v1")
    frame = store.training_set(applied, labels, service="pricing_v1", unknown="allow")
    assert pd.isna(frame.set_index("item_id").loc["nope", "price"])


@pytest.mark.integration
def test_pricing_views_on_postgres_and_redis(shop, production_services):
    production = shop.model_copy(update=production_services)
    store.apply(production)
    store.materialize(production, SIX_WEEKS, flow="sales")
    found = online.online_features(
        production, "demand_history_fv", [{"item_id": "b", "store_id": "s1"}]
    )
    assert found.row(0)["units_lag1"] == _units("b", "s1", 5)
    frame = store.training_set(production, _labels(), service="pricing_v1")
    assert frame["price"].notna().sum() == len(_labels()) - 1  # all but c/s2 in week 2
