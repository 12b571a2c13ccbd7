"""The feature SQL written once: every query the feature tables run transpiles to Spark SQL with
no DuckDB-only construct left, and DuckDB, running the shared form, writes the same bytes as the
DuckDB-only queries did before them (digests recorded from that code)."""

from __future__ import annotations

import hashlib
import re
from datetime import date, timedelta

import pytest
import sqlglot

from features import feature_tables, history_tables, pricing_tables
from features.engines.sql import DUCKDB_ONLY_FUNCTIONS, to_spark
from features.etl import run_etl
from features.feature_tables import build_feature_tables
from features.pricing_tables import build_pricing_tables
from features.storage import Interval

QUERIES = {
    name: sql
    for module in (feature_tables, pricing_tables, history_tables)
    for name, sql in module.queries().items()
}

HEADER = "user_id,item_id,timestamp,event_type,price,quantity\n"
DAYS = Interval.parse("2024-03-01", "2024-03-05")
EVENTS = "".join(
    f"u{k % 7},i{(k * 5) % 23},2024-03-0{1 + k % 4}T{k % 24:02d}:{(k * 7) % 60:02d}:00Z,"
    f"{'purchase' if k % 9 == 0 else 'view'},{'' if k % 3 else f'{1 + k % 5}.25'},"
    f"{'1' if k % 9 == 0 else ''}\n"
    for k in range(120)
)
ITEMS = "item_id,name,category\n" + "".join(
    f"i{k},Item {k},{['Drinks|Tea', 'Food', 'Drinks', ''][k % 4]}\n" for k in range(20)
)
SALES_HEADER = "item_id,store_id,week_start,price,units,cost,promo,feature\n"
WEEKS = [date(2024, 1, 4) + timedelta(weeks=k) for k in range(5)]
SALES_INTERVAL = Interval.parse(WEEKS[0], WEEKS[-1] + timedelta(days=7))
BEFORE = Interval.parse("2024-01-01", WEEKS[0])
SALES = SALES_HEADER + "".join(
    f"i{i},s{s},{w:%Y-%m-%d},{1 + i / 3 + k / 7:.4f},{(i * 13 + k * 7 + s) % 40},0.5,"
    f"{(i + k) % 2},{(i * k) % 3 / 2}\n"
    for k, w in enumerate(WEEKS)
    for i in range(6)
    for s in range(2)
    if (i + s + k) % 5
)

# sha256 of every file the DuckDB-only queries wrote for this shop (recorded before the rewrite)
DUCKDB_DIGESTS: dict[str, str] = {
    "shop/item_popularity/date=2024-03-01/part-0.parquet": (
        "4a263ff1f434daf85cc1dd80780146a43185dad62761e1630333f0d58fe9094e"
    ),
    "shop/item_popularity/date=2024-03-02/part-0.parquet": (
        "46cfa6cf31666bcf6ae1c4168ffab8571eb0c8539277e3264017d53a0c034ab5"
    ),
    "shop/item_popularity/date=2024-03-03/part-0.parquet": (
        "eb660f7a1f7ad8872c774ae09ce4d15b20029186e76cfc213681e4e092b38ffc"
    ),
    "shop/item_popularity/date=2024-03-04/part-0.parquet": (
        "c7cb1d6097db76a5e5c0a57f9bf24a7ac8d301feaa2d541c4a722adb329055dc"
    ),
    "shop/user_activity/date=2024-03-01/part-0.parquet": (
        "9b1d7371449eecb58d3816dde2c44b7c8fc20cd1a6b1e90653a9834424670126"
    ),
    "shop/user_activity/date=2024-03-02/part-0.parquet": (
        "76cd3b8341f8d12eaa038f06a5b4b0c1dd535863cfdcf31de1a0fc008b9785de"
    ),
    "shop/user_activity/date=2024-03-03/part-0.parquet": (
        "4abe32b925e4a44d893522891df19660156f0abbc8a6e5447af2c80b51ed232a"
    ),
    "shop/user_activity/date=2024-03-04/part-0.parquet": (
        "ff8f183abb2a062ccd3f6d1c1bf3a54d51da63530e4310aedf694d8a564f4d9b"
    ),
    "shop/user_history/date=2024-03-01/part-0.parquet": (
        "41c923b06ce40235ae1c9ca724aea71d8944e2f4eb5b8d5e9eebd0416d698f0e"
    ),
    "shop/user_history/date=2024-03-02/part-0.parquet": (
        "6ef7fc38235510efd4ddd051b54dcefd3e71812231472d3a349d7081aa17610e"
    ),
    "shop/user_history/date=2024-03-03/part-0.parquet": (
        "5510a48039d64d656525c3d4f1933068f0b5c537065a3e326279f9d1ef07223a"
    ),
    "shop/user_history/date=2024-03-04/part-0.parquet": (
        "b1306d040dd0f6c01ebc5d07df9434fa34874490f4484f62ce20a344b0779e26"
    ),
    "shop_sales/demand_history/date=2024-01-04/part-0.parquet": (
        "508ed64ec992c6aebe4c887976fedbc0f770a248e319bc5130a69760e3418717"
    ),
    "shop_sales/demand_history/date=2024-01-11/part-0.parquet": (
        "758e1c89498a30763c6cd5d5e6e3ca61359bcb8408b6bdee4a59ec3207b51563"
    ),
    "shop_sales/demand_history/date=2024-01-18/part-0.parquet": (
        "39aa37171dfaa7d35b09deac7b29d559f72cb0d8c731657d42b7d55ad7446705"
    ),
    "shop_sales/demand_history/date=2024-01-25/part-0.parquet": (
        "6404cc87dcf6d1478804113889f9d7b80311a808c79310916da2829229ffec66"
    ),
    "shop_sales/demand_history/date=2024-02-01/part-0.parquet": (
        "363a89fc61cdc269113b2576aa7051685655827a8e590320040c88e3d7e3c8f4"
    ),
    "shop_sales/item_price/date=2024-01-04/part-0.parquet": (
        "df40219eb791f25da5603873f458f7b767d0ff741f270df02e40cfd5d70e5a7a"
    ),
    "shop_sales/item_price/date=2024-01-11/part-0.parquet": (
        "b55ad45c5ad175c9a445b30da78ceda0ec19643fe16b24304f9cc0a5ac7fab41"
    ),
    "shop_sales/item_price/date=2024-01-18/part-0.parquet": (
        "16d0284710f721b3d5eff07172a8fb01caac0a96e1a2d942c1a149e878b61210"
    ),
    "shop_sales/item_price/date=2024-01-25/part-0.parquet": (
        "ca7db9c25993425c9cfc8a89049f3e3652ab98d3185c45c45ffba01b297d84cf"
    ),
    "shop_sales/item_price/date=2024-02-01/part-0.parquet": (
        "0415722732071e420318ac5f02f202b0e05b370d38894be9fb6e98d1cdffd12a"
    ),
    "shop_sales/store_attributes/date=2024-01-04/part-0.parquet": (
        "de505e2b5426c132d36fff011b2723a83d0df288404b5c07c3e749dd62bd79d1"
    ),
}


@pytest.fixture
def shop(settings, land_raw, tmp_path):
    """A few days of a shop's interactions and a few weeks of its sales, curated."""
    for source in ("shop", "shop_sales"):
        (tmp_path / f"{source}.csv").write_text(HEADER)
    settings.engine = "duckdb"  # whatever AISLE_ENGINE says: the digests are DuckDB's
    settings.interactions_source = str(tmp_path / "shop.csv")
    settings.sales_source = str(tmp_path / "shop_sales.csv")
    land_raw(HEADER + EVENTS, interval=DAYS)
    run_etl(settings, "shop", "interactions", DAYS)
    snapshot = Interval.parse("2024-03-01", "2024-03-02")
    land_raw(ITEMS, table="items", interval=snapshot)
    run_etl(settings, "shop", "items", snapshot)
    for table, content in (("items", ITEMS), ("stores", "store_id,name,income\ns0,A,1\ns1,B,2\n")):
        land_raw(content, table=table, interval=BEFORE, dataset="shop_sales")
        run_etl(settings, "shop_sales", table, BEFORE)
    land_raw(SALES, table="sales", interval=SALES_INTERVAL, dataset="shop_sales")
    run_etl(settings, "shop_sales", "sales", SALES_INTERVAL)
    return settings


def _digests(settings) -> dict[str, str]:
    root = settings.data_dir / "features"
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*.parquet"))
    }


def test_duckdb_writes_the_bytes_it_wrote_before_the_shared_sql(shop):
    build_feature_tables(shop, "shop", DAYS)
    build_pricing_tables(shop, "shop_sales", SALES_INTERVAL)
    assert _digests(shop) == DUCKDB_DIGESTS


def test_every_query_is_known():
    assert len(QUERIES) == 10  # user_activity 2, item_popularity, item_price 2, demand, history 4


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_query_transpiles_to_spark_sql_without_duckdb_functions(name):
    sql = QUERIES[name]
    spark_sql = to_spark(sql)
    sqlglot.parse_one(spark_sql, read="spark")  # raises on what Spark's grammar rejects
    for function in DUCKDB_ONLY_FUNCTIONS:
        assert not re.search(rf"\b{function}\s*\(", spark_sql, re.IGNORECASE), function
    assert "$" not in spark_sql
    assert not re.search(r"\[\s*\d*\s*:", spark_sql)  # no DuckDB slice survives
    # each $parameter becomes a named Spark parameter that spark.sql(args=...) binds
    assert set(re.findall(r":(\w+)", spark_sql)) == set(re.findall(r"\$(\w+)", sql))


def test_an_ordered_list_keeps_its_order_on_spark():
    """sqlglot alone writes COLLECT_LIST(item_id) and drops the ORDER BY; the shim sorts."""
    spark_sql = _one_line(to_spark("SELECT list(item_id ORDER BY last_ts DESC, item_id) FROM t"))
    assert "ARRAY_SORT(COLLECT_LIST(STRUCT(last_ts AS _k0, item_id AS _k1, item_id AS _v))" in (
        spark_sql
    )
    assert "WHEN l._k0 < r._k0 THEN 1" in spark_sql  # DESC: the later touch first


def test_list_averages_are_folds_that_keep_the_empty_list_null():
    spark_sql = _one_line(to_spark("SELECT list_avg(list_sort(list(x))) FROM t"))
    assert spark_sql == (
        "SELECT CASE WHEN SIZE(ARRAY_SORT(COLLECT_LIST(x))) > 0 THEN AGGREGATE(ARRAY_SORT("
        "COLLECT_LIST(x)), CAST(0 AS DOUBLE), (acc, x) -> acc + x) / SIZE(ARRAY_SORT("
        "COLLECT_LIST(x))) END FROM t"
    )


def _one_line(spark_sql: str) -> str:
    return sqlglot.transpile(spark_sql, read="spark", write="spark")[0]
