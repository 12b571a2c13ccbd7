"""Pricing training sets: every sales row of a store x item x week, its features from Feast.

    train_end = end - test_weeks - valid_weeks    valid_end = end - test_weeks    end
    |------------- fit rows ---------------|---- valid rows ----|---- test rows ----|

* The label is the week's units from the curated sales zone; everything the model sees comes
  from the `pricing_v1` feature service, joined point-in-time at the week's start: the shelf of
  that week (prices are posted when it starts) and the demand history of the weeks before (a
  week's units are known when it ends), so a label never leaks into its own features.
* Tuning looks at the valid rows only; the test rows are scored once, at the end. The model is
  then refit on fit + valid rows with the chosen settings (the most recent weeks matter most to
  a forecast).

The training set is one parquet file per interval (rows with `role` fit / valid / test and the
metadata in the schema); tasks pass its path, never frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import duckdb
import pandas as pd

from core.settings import Settings
from training.training_sets import (
    TrainingSetEmpty,
    Windows,
    curated_files,
    read_training_set,
    training_set_path,
    write_training_set,
)

FEATURE_SERVICE = "pricing_v1"
MODEL = "pricing"
ROLES = ("fit", "valid", "test")


def build_training_set(settings: Settings, dataset: str, windows: Windows) -> Path:
    """Write the training set of `windows` and return its path (atomic, idempotent)."""
    from features.store import training_set

    sales = _sales(settings, dataset, windows)
    for role, count in sales.role.value_counts().reindex(ROLES, fill_value=0).items():
        if count == 0:
            raise TrainingSetEmpty(
                f"no {dataset} sales in the {role} window of {windows.to_dict()}: ingest and "
                "build features for more weeks, or change the interval end or the window sizes"
            )
    entities = sales[["item_id", "store_id", "event_timestamp"]]
    features = training_set(settings, entities, FEATURE_SERVICE, unknown="allow")
    features["event_timestamp"] = pd.to_datetime(features["event_timestamp"], utc=True)
    frame = sales.merge(features, on=["item_id", "store_id", "event_timestamp"], how="left")
    if len(frame) != len(sales):
        raise RuntimeError(f"the feature join changed the row count ({len(sales)} -> {len(frame)})")
    no_shelf = frame["price"].isna()
    frame = frame[~no_shelf].sort_values(["event_timestamp", "item_id", "store_id"])
    metadata = {
        "dataset": dataset,
        "feature_service": FEATURE_SERVICE,
        "windows": windows.to_dict(),
        "rows": {role: int((frame.role == role).sum()) for role in ROLES},
        # A sales row whose week has no item_price row (features not built for it) is dropped
        # and counted, never silently lost.
        "dropped_without_shelf_features": int(no_shelf.sum()),
    }
    return write_training_set(frame, metadata, training_set_path(settings, MODEL, dataset, windows))


def _sales(settings: Settings, dataset: str, windows: Windows) -> pd.DataFrame:
    end = windows.end
    files = curated_files(settings, dataset, "sales", end)
    sql = """SELECT item_id, store_id, week_start, units FROM read_parquet($files)
             ORDER BY week_start, item_id, store_id"""
    with duckdb.connect() as con:
        frame = con.execute(sql, {"files": files}).df()
    frame["event_timestamp"] = pd.to_datetime(frame.pop("week_start")).dt.tz_localize(UTC)
    times = frame["event_timestamp"]
    frame["role"] = "fit"
    frame.loc[times >= windows.train_end, "role"] = "valid"
    frame.loc[times >= windows.valid_end, "role"] = "test"
    return frame


@dataclass(frozen=True)
class PricingData:
    """A training set split by role, with the metadata it was written with."""

    fit: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    metadata: dict

    @classmethod
    def load(cls, path: Path) -> PricingData:
        frame, metadata = read_training_set(path)
        parts = {role: frame[frame.role == role].reset_index(drop=True) for role in ROLES}
        if parts["fit"].empty:
            raise TrainingSetEmpty(f"{path}: no rows to fit on")
        return cls(**parts, metadata=metadata)
