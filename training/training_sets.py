"""What every model's training set shares: the windows it is cut into, where it is written, and
how it is written and read with its metadata.

    train_end = end - test - valid        valid_end = end - test        end
    |------------ fit ------------|------- valid -------|------- test -------|

A training set is one parquet file per interval, its metadata (dataset, feature service,
windows, counts) in the schema under the key `aisle`; tasks pass its path, never frames:

    data/training/<model>/<dataset>/<train_end>_<valid_end>_<end>/training_set.parquet
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.files import write_parquet_atomic
from core.settings import Settings

TRAINING_SET_FILE = "training_set.parquet"
METADATA_KEY = b"aisle"


class TrainingSetEmpty(ValueError):
    """The windows hold too little data to train or evaluate on."""


@dataclass(frozen=True)
class Windows:
    """The fit, valid and test windows of one training set, cut back from `end`."""

    train_end: datetime
    valid_end: datetime
    end: datetime

    @classmethod
    def before(cls, end: datetime, valid: timedelta, test: timedelta) -> Windows:
        """Windows ending at `end` (a UTC day boundary): `test` before it, `valid` before that."""
        end = end.astimezone(UTC)
        if (end.hour, end.minute, end.second, end.microsecond) != (0, 0, 0, 0):
            raise ValueError(f"the interval end {end.isoformat()} is not a UTC day boundary")
        if valid <= timedelta(0) or test <= timedelta(0):
            raise ValueError(f"the valid ({valid}) and test ({test}) windows must be > 0")
        valid_end = end - test
        return cls(valid_end - valid, valid_end, end)

    @classmethod
    def days_before(cls, end: datetime, valid_days: int, test_days: int) -> Windows:
        return cls.before(end, timedelta(days=valid_days), timedelta(days=test_days))

    @classmethod
    def weeks_before(cls, end: datetime, valid_weeks: int, test_weeks: int) -> Windows:
        return cls.before(end, timedelta(weeks=valid_weeks), timedelta(weeks=test_weeks))

    def key(self) -> str:
        return f"{self.train_end:%Y%m%d}_{self.valid_end:%Y%m%d}_{self.end:%Y%m%d}"

    def to_dict(self) -> dict[str, str]:
        return {k: v.isoformat() for k, v in vars(self).items()}


def training_set_path(settings: Settings, model: str, dataset: str, windows: Windows) -> Path:
    return settings.data_dir / "training" / model / dataset / windows.key() / TRAINING_SET_FILE


def write_training_set(frame: pd.DataFrame, metadata: dict[str, Any], path: Path) -> Path:
    """Write `frame` with `metadata` in its schema (atomic, deterministic)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(metadata)})
    return write_parquet_atomic(table, path)


def read_training_set(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The frame and the metadata a training set was written with."""
    table = pq.read_table(path)
    return table.to_pandas(), json.loads(table.schema.metadata[METADATA_KEY])


def curated_files(settings: Settings, dataset: str, table: str, end: datetime) -> list[str]:
    """The curated partitions of `table` for the days before `end`; none is TrainingSetEmpty."""
    from features.etl import CURATED_FILE
    from features.storage import list_partitions

    files = [
        str(folder / CURATED_FILE)
        for folder in list_partitions(settings.curated_dir, dataset, table)
        if folder.name.removeprefix("date=") < end.date().isoformat()
        and (folder / CURATED_FILE).exists()
    ]
    if not files:
        raise TrainingSetEmpty(
            f"no curated {dataset} {table} before {end.isoformat()}; run the ingest first"
        )
    return files
