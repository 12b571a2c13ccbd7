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
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.files import write_parquet_atomic, write_with
from core.settings import Settings
from features.labels import Labels

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


def write_joined_training_set(
    settings: Settings,
    labels: pd.DataFrame | Labels,
    service: str,
    metadata: dict[str, Any],
    path: Path,
    unknown: Literal["error", "allow"] = "allow",
) -> Path:
    """Write the point-in-time join of `service` onto `labels` as a training set (a set whose
    rows are the join itself), read back by `read_training_set` like any other.

    On Spark the executors write the joined rows (beside `path`: a folder every executor
    reaches, on a cluster) and this process streams their part files into the one training-set
    file a batch at a time: the joined features never become a frame here, and labels given as a
    query (`features.labels.Labels`) never leave Spark either. On DuckDB it is the frame
    `features.store.training_set` returns, written by `write_training_set`."""
    from features.store import training_job, training_set

    if settings.engine != "spark":
        frame = training_set(settings, labels, service, unknown)
        return write_training_set(frame, metadata, path)
    job = training_job(settings, labels, service, unknown)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".parts-") as parts:
        job.to_spark_df().write.mode("overwrite").parquet(parts)
        return write_with(path, lambda tmp: _join_parts(Path(parts), metadata, tmp))


def _join_parts(parts: Path, metadata: dict[str, Any], target: Path) -> None:
    """Spark's part files, in order, as one parquet file with `metadata` in its schema. Spark's
    timestamps (UTC wall times, without a zone when written as INT96) become UTC microseconds,
    as a frame from `features.store.training_set` has them."""
    files = sorted(parts.glob("part-*.parquet"))
    schema = pq.read_schema(files[0])
    utc = pa.timestamp("us", "UTC")
    schema = pa.schema(
        [f.with_type(utc) if pa.types.is_timestamp(f.type) else f for f in schema],
        metadata={METADATA_KEY: json.dumps(metadata)},
    )
    with pq.ParquetWriter(target, schema, compression="zstd", store_schema=True) as writer:
        for file in files:
            for batch in pq.ParquetFile(file).iter_batches():
                writer.write_table(pa.Table.from_batches([batch]).cast(schema))


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
