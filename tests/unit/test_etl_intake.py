"""A shop's export as it comes: an order log with its own column names, no event type and no
price is mapped with one option and curated; price features read the missing price as missing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from aisle.cli.app import app
from core.settings import get_settings
from features.column_map import ColumnMapError, load_map_file, parse_map
from features.etl import run_etl
from features.feature_tables import build_feature_tables
from features.reading import RawFileError
from features.storage import Interval, stream_partition_dir
from features.stream.zones import EVENT_SCHEMA
from features.summary import zone_summary

WEEK = Interval.parse("2024-03-01", "2024-03-08")
D = Interval.parse("2024-03-07", "2024-03-08")
ORDERS = (
    "customer_id,sku,ordered_at,qty,store\n"
    "c1,s1,2024-03-01T10:00:00Z,2,north\n"
    "c1,s2,2024-03-03T10:00:00Z,1,north\n"
    "c2,s1,2024-03-05T09:00:00Z,1,south\n"
    ",,,,\n"  # a blank row stays a blank row, whatever the mapping adds
    "c2,s1,2024-03-07T09:00:00Z,3,south\n"
)
ORDER_MAP = {
    "user_id": "customer_id",
    "item_id": "sku",
    "timestamp": "ordered_at",
    "quantity": "qty",
    "event_type": ":purchase",  # an order log has no event type: every row is a purchase
}


def _mapped(settings, mapping=ORDER_MAP, extra_columns=True):
    return settings.model_copy(
        update={"column_map": {"interactions": mapping}, "allow_extra_columns": extra_columns}
    )


def test_a_priceless_order_log_is_mapped_curated_and_counted(settings, land_raw):
    land_raw(ORDERS, interval=WEEK)

    summary = run_etl(_mapped(settings), "shop", "interactions", WEEK)

    assert (summary.rows_in, summary.curated, summary.quarantined) == (5, 4, 1)
    assert summary.quarantined_by_reason == {"empty_row": 1}
    assert summary.purchases_without_price == 4
    # `aisle data summary` reads them from the run records
    assert {t.table: t.purchases_without_price for t in zone_summary(settings)} == {
        "interactions": 4
    }
    assert summary.dropped_columns == {summary.raw_files[0]: ["store"]}
    curated = pd.concat(pd.read_parquet(p) for p in summary.curated_partitions)
    assert curated["event_type"].tolist() == ["purchase"] * 4
    assert curated["user_id"].tolist() == ["c1", "c1", "c2", "c2"]
    assert curated["quantity"].tolist() == [2, 1, 1, 3]
    assert curated["price"].isna().all()  # missing, not zero
    line = pd.read_parquet(summary.quarantine_file)["line"].tolist()
    assert line == [5]  # the line in the shop's own file


def test_price_features_read_a_missing_price_as_missing(settings, land_raw):
    land_raw(ORDERS, interval=WEEK)
    run_etl(_mapped(settings), "shop", "interactions", WEEK)

    written = build_feature_tables(settings, "shop", D)

    items = {r["item_id"]: r for r in pq.read_table(written["item_popularity"][0]).to_pylist()}
    assert items["s1"]["purchases_7d"] == 3
    assert items["s1"]["mean_price_7d"] is None and items["s2"]["mean_price_7d"] is None
    users = {r["user_id"]: r for r in pq.read_table(written["user_activity"][0]).to_pylist()}
    assert users["c2"]["purchases_30d"] == 2
    assert users["c2"]["event_timestamp"] == datetime(2024, 3, 8, tzinfo=UTC)


def test_the_event_streams_files_are_read_unmapped(settings, land_raw):
    land_raw(ORDERS, interval=WEEK)
    folder = stream_partition_dir(settings.raw_dir, "shop", "2024-03-02")
    folder.mkdir(parents=True)
    view = {"event_id": "e1", "user_id": "u1", "item_id": "i1", "event_type": "view"}
    view["timestamp"] = datetime(2024, 3, 2, 12, tzinfo=UTC)  # the canonical schema, typed
    pq.write_table(pa.Table.from_pylist([view], schema=EVENT_SCHEMA), folder / "batch.parquet")

    summary = run_etl(_mapped(settings), "shop", "interactions", WEEK)

    assert (summary.curated, summary.purchases_without_price) == (5, 4)


def test_a_parquet_export_maps_the_same_way(settings, land_raw, tmp_path):
    frame = pd.DataFrame(
        {
            "customer_id": ["c1", "c2"],
            "sku": ["s1", "s2"],
            "ordered_at": pd.to_datetime(["2024-03-01T10:00:00Z", "2024-03-02T11:00:00Z"]),
            "qty": [1, 2],
        }
    )
    path = tmp_path / "orders.parquet"
    frame.to_parquet(path)
    land_raw(path.read_bytes(), name="interactions.parquet", interval=WEEK)

    summary = run_etl(_mapped(settings), "shop", "interactions", WEEK)

    assert (summary.curated, summary.purchases_without_price) == (2, 2)


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (
            {"user_id": "customer_id"},
            "missing required column(s) item_id, timestamp, event_type for the interactions "
            "schema after the column map (it has: customer_id, sku, ordered_at, qty, store;",
        ),
        ({"user_id": "customer"}, "the column map user_id=customer names a column the file"),
        (ORDER_MAP | {"userid": "customer_id"}, "names userid, not a column of the interactions"),
        (ORDER_MAP | {"rating": "qty"}, "maps qty onto two columns"),
        (ORDER_MAP | {"store": ":x"}, "not a column of the interactions"),
    ],
)
def test_a_mapping_that_cannot_work_is_a_clear_error(settings, land_raw, mapping, message):
    land_raw(ORDERS, interval=WEEK)
    with pytest.raises(RawFileError) as error:
        run_etl(_mapped(settings, mapping), "shop", "interactions", WEEK)
    assert message in str(error.value)


def test_a_mapping_that_leaves_a_column_twice_is_an_error(settings, land_raw):
    land_raw("user_id,customer_id,sku,ordered_at\nu1,c1,s1,2024-03-01T10:00:00Z\n", interval=WEEK)
    mapping = {"user_id": "customer_id", "item_id": "sku", "timestamp": "ordered_at"}
    with pytest.raises(RawFileError, match="the file has user_id twice"):
        run_etl(_mapped(settings, mapping | {"event_type": ":view"}), "shop", "interactions", WEEK)


def test_an_unmapped_export_names_what_is_missing_and_the_option(settings, land_raw):
    land_raw(ORDERS, interval=WEEK)
    with pytest.raises(RawFileError) as error:
        run_etl(settings, "shop", "interactions", WEEK)
    text = str(error.value)
    assert "missing required column(s) user_id, item_id, timestamp, event_type" in text
    assert "it has: customer_id, sku, ordered_at, qty, store" in text
    assert "--map user_id=<its column>" in text and "event_type=:purchase" in text


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("map.json", json.dumps({"user_id": "customer_id", "event_type": ":purchase"})),
        ("map.yaml", "user_id: customer_id\nevent_type: ':purchase'\n"),
        ("map.toml", 'user_id = "customer_id"\nevent_type = ":purchase"\n'),
    ],
)
def test_mapping_files(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    assert load_map_file(path) == {"user_id": "customer_id", "event_type": ":purchase"}


@pytest.mark.parametrize(
    ("name", "content"),
    [("map.yaml", "user_id: [customer"), ("map.json", '["user_id"]'), ("map.txt", "user_id=x")],
)
def test_a_mapping_file_that_cannot_be_read_is_a_clear_error(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ColumnMapError, match=str(path)):
        load_map_file(path)


def test_the_map_option():
    assert parse_map(" user_id=Customer ID , event_type=:purchase,") == {
        "user_id": "Customer ID",
        "event_type": ":purchase",
    }
    for bad in ("user_id", "user_id=", "=x", "a=b,a=c", "event_type=:"):
        with pytest.raises(ColumnMapError):
            parse_map(bad)


def test_the_cli_maps_with_one_option(tmp_path):
    export = tmp_path / "orders.csv"
    export.write_text("\n".join(line.rsplit(",", 1)[0] for line in ORDERS.splitlines()) + "\n")
    mapping = ",".join(f"{k}={v}" for k, v in ORDER_MAP.items())
    args = ["etl", "interactions", "--source", str(export), "--start", "2024-03-01"]
    args += ["--end", "2024-03-08", "--data-dir", str(tmp_path / "data"), "--map", mapping]

    result = CliRunner().invoke(app, args, terminal_width=300)

    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "5 in → 4 curated, 1 quarantined (empty_row 1)" in output
    assert "4 curated purchases have no price" in output


def test_a_column_map_for_no_table_is_refused(tmp_path):
    with pytest.raises(ValidationError, match="no table interaction"):
        get_settings(data_dir=tmp_path, column_map={"interaction": {"user_id": "customer_id"}})


def test_the_cli_refuses_a_map_for_a_built_in_source(tmp_path):
    args = ["etl", "interactions", "--start", "2024-03-01", "--end", "2024-03-02"]
    args += ["--source", "movielens", "--data-dir", str(tmp_path), "--map", "user_id=customer"]
    result = CliRunner().invoke(app, args, terminal_width=300)
    assert result.exit_code == 1
    assert "'movielens' is built in and canonical" in result.output
