"""Data validation before training (monitoring.data_checks): a clean set passes and becomes the
reference for the next; a corrupted one is stopped with every reason named."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitoring.data_checks import TrainingDataRejected, validate_step


def pricing_set(path, frame: pd.DataFrame):
    table = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = {"windows": {}, "dataset": "shop"}
    pq.write_table(table.replace_schema_metadata({"aisle": json.dumps(metadata)}), path)
    return path


@pytest.fixture
def sales() -> pd.DataFrame:
    from serving.sandbox import shop_sales

    frame = shop_sales(items=6, stores=3, weeks=12)
    return frame.assign(role=np.where(frame.index < len(frame) * 0.8, "fit", "test"))


def test_a_clean_set_passes_and_is_remembered(settings, sales, tmp_path):
    checked = validate_step("pricing", pricing_set(tmp_path / "a.parquet", sales), settings)
    assert checked["checks"] >= 10
    assert "<html" in (tmp_path / "validation.html").read_text()[:2000].lower()
    accepted = json.loads((settings.data_dir / "monitoring/pricing/accepted-shop.json").read_text())
    assert accepted["rows"] == len(sales) and len(accepted["categories"]["store_id"]) == 3
    # the next, similar set passes against it
    validate_step("pricing", pricing_set(tmp_path / "b.parquet", sales.iloc[5:]), settings)


def test_a_corrupted_set_is_stopped_with_every_reason(settings, sales, tmp_path):
    validate_step("pricing", pricing_set(tmp_path / "a.parquet", sales), settings)
    bad = sales.iloc[: len(sales) // 3].copy()  # two thirds of the rows gone
    bad.loc[bad.index[:5], "units"] = -3.0  # negative sales
    bad.loc[bad.index[5:8], "price"] = np.nan  # missing prices
    bad.loc[bad.index[10:], "store_id"] = "store99"  # most rows from a store never seen
    with pytest.raises(TrainingDataRejected) as rejected:
        validate_step("pricing", pricing_set(tmp_path / "bad.parquet", bad), settings)
    message = str(rejected.value)
    for expected in ("Row count", "units", "price", "store_id", "validation.html"):
        assert expected in message, message
    # the reference stays the last accepted set
    accepted = json.loads((settings.data_dir / "monitoring/pricing/accepted-shop.json").read_text())
    assert accepted["rows"] == len(sales)


def test_the_last_accepted_set_is_kept_per_data_set(settings, sales, tmp_path):
    validate_step("pricing", pricing_set(tmp_path / "a.parquet", sales), settings)
    other = sales.iloc[-10:].assign(store_id="elsewhere")  # another shop: a first set of its own
    table = pa.Table.from_pandas(other, preserve_index=False)
    metadata = {"windows": {}, "dataset": "other"}
    path = tmp_path / "b.parquet"
    pq.write_table(table.replace_schema_metadata({"aisle": json.dumps(metadata)}), path)
    assert validate_step("pricing", path, settings)["rows"] == 10


def test_a_set_missing_a_column_is_stopped_before_anything_else(settings, sales, tmp_path):
    with pytest.raises(TrainingDataRejected, match=r"schema: missing column.*units"):
        validate_step(
            "pricing", pricing_set(tmp_path / "a.parquet", sales.drop(columns="units")), settings
        )


def test_recommender_histories_are_checked(settings, tmp_path):
    frame = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3"],
            "role": ["fit", "fit", "test"],
            "as_of": pd.Timestamp("2024-01-01", tz="UTC"),
            "history_item_ids": [["a", "b"], ["b"], ["a"]],
            "target_item_ids": [["c"], [], ["b"]],
        }
    )
    metadata = {"windows": {}, "categories": {"a": "x", "b": "y"}}
    table = pa.Table.from_pandas(frame, preserve_index=False)
    path = tmp_path / "training_set.parquet"
    pq.write_table(table.replace_schema_metadata({"aisle": json.dumps(metadata)}), path)
    assert validate_step("recommender", path, settings)["rows"] == 3  # (user, item) pairs

    frame.at[1, "history_item_ids"] = []  # a fit user with an empty history ...
    frame.loc[0, "user_id"] = None  # ... and one without an id
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table.replace_schema_metadata({"aisle": json.dumps(metadata)}), path)
    with pytest.raises(TrainingDataRejected) as rejected:
        validate_step("recommender", path, settings)
    assert "user_id" in str(rejected.value) and "history_length" in str(rejected.value)
