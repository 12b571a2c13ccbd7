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

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.files import write_parquet_atomic
from core.settings import Settings
from features.etl import CURATED_FILE
from features.storage import list_partitions

FEATURE_SERVICE = "pricing_v1"
TRAINING_SET_FILE = "training_set.parquet"
ROLES = ("fit", "valid", "test")


class TrainingSetEmpty(ValueError):
    """The windows hold too little data to train or evaluate on."""


@dataclass(frozen=True)
class WeeklyWindows:
    train_end: datetime
    valid_end: datetime
    end: datetime

    @classmethod
    def before(cls, end: datetime, valid_weeks: int, test_weeks: int) -> WeeklyWindows:
        """Windows ending at `end` (a UTC day boundary), cut at whole weeks before it."""
        end = end.astimezone(UTC)
        if (end.hour, end.minute, end.second, end.microsecond) != (0, 0, 0, 0):
            raise ValueError(f"the interval end {end.isoformat()} is not a UTC day boundary")
        if valid_weeks <= 0 or test_weeks <= 0:
            raise ValueError(
                f"valid_weeks ({valid_weeks}) and test_weeks ({test_weeks}) must be > 0"
            )
        valid_end = end - timedelta(weeks=test_weeks)
        return cls(valid_end - timedelta(weeks=valid_weeks), valid_end, end)

    def key(self) -> str:
        return f"{self.train_end:%Y%m%d}_{self.valid_end:%Y%m%d}_{self.end:%Y%m%d}"

    def to_dict(self) -> dict[str, str]:
        return {k: v.isoformat() for k, v in vars(self).items()}


def training_set_path(settings: Settings, dataset: str, windows: WeeklyWindows) -> Path:
    return settings.data_dir / "training" / "pricing" / dataset / windows.key() / TRAINING_SET_FILE


def build_training_set(settings: Settings, dataset: str, windows: WeeklyWindows) -> Path:
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
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({"aisle": json.dumps(metadata)})
    path = training_set_path(settings, dataset, windows)
    write_parquet_atomic(table, path)
    return path


def _sales(settings: Settings, dataset: str, windows: WeeklyWindows) -> pd.DataFrame:
    end = windows.end
    files = [
        str(folder / CURATED_FILE)
        for folder in list_partitions(settings.curated_dir, dataset, "sales")
        if folder.name.removeprefix("date=") < end.date().isoformat()
        and (folder / CURATED_FILE).exists()
    ]
    if not files:
        raise TrainingSetEmpty(
            f"no curated {dataset} sales before {end.isoformat()}; run the ingest first"
        )
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
        table = pq.read_table(path)
        metadata = json.loads(table.schema.metadata[b"aisle"])
        frame = table.to_pandas()
        parts = {role: frame[frame.role == role].reset_index(drop=True) for role in ROLES}
        if parts["fit"].empty:
            raise TrainingSetEmpty(f"{path}: no rows to fit on")
        return cls(**parts, metadata=metadata)
