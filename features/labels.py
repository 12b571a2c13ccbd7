"""The labels a training set is joined onto: a frame, or a query the engine runs where the data is.

A training set is the point-in-time join of a feature service onto labels: entity keys (user_id,
item_id, store_id) and the `event_timestamp` each row's features must predate. They come as

    a pandas frame                 built by the caller (the models' dataset builders)
    Labels(sql, views, params)     a query in DuckDB's dialect, as the feature tables are written
                                   (`features.engines`), over views of parquet files

On DuckDB a `Labels` is run here and becomes the frame. On Spark (AISLE_ENGINE=spark) it stays a
Spark DataFrame: the checks below run there as aggregates, only their verdicts come back, and
Feast's Spark offline store joins it where it is. However many labels a shop has, the driver
holds none of them.

Either way the labels are checked before the join, with a message that says what to fix: the
keys and `event_timestamp` present, not empty, every time set, the keys strings (ids are strings
in Aisle), no row twice (same keys and time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from core.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkFrame


class TrainingSetError(ValueError):
    """Labels the training-set builder cannot use; the message says what to fix."""


@dataclass(frozen=True)
class Labels:
    """Labels as a query: `sql` (DuckDB's dialect, $parameters from `params`) over `views`, each
    a view name and the parquet files it reads. The query's columns are the entity keys and
    `event_timestamp`."""

    sql: str
    views: Mapping[str, Sequence[Path]]
    params: Mapping[str, Any] = field(default_factory=dict)


def resolve(settings: Settings, labels: pd.DataFrame | Labels, keys: list[str]) -> Any:
    """The checked labels, ready for Feast: a pandas frame (times as UTC), or on Spark a Spark
    DataFrame when `labels` is a query."""
    if isinstance(labels, pd.DataFrame):
        check_frame(labels, keys)
        frame = labels.copy()
        frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
        return frame
    from .engines import open_engine
    from .engines.spark import SparkEngine

    with open_engine(settings) as engine:
        for view, files in labels.views.items():
            engine.register(view, list(files))
        if isinstance(engine, SparkEngine):  # the rows stay there; the checks are Spark jobs
            spark_frame = engine.frame(labels.sql, dict(labels.params))
            check_spark_frame(spark_frame, keys)
            return spark_frame
        table = engine.query(labels.sql, dict(labels.params))
    return resolve(settings, table.to_pandas(), keys)


def check_frame(frame: pd.DataFrame, keys: list[str]) -> None:
    missing = [c for c in [*keys, "event_timestamp"] if c not in frame]
    if missing:
        raise TrainingSetError(f"the labels lack column(s) {', '.join(missing)}")
    if frame.empty:
        raise TrainingSetError("the labels are empty")
    times = pd.to_datetime(frame["event_timestamp"], utc=True, errors="coerce")
    if times.isna().any():
        bad = frame.index[times.isna()][:5].tolist()
        raise TrainingSetError(f"event_timestamp is missing or not a time in rows {bad}")
    for key in keys:
        if not all(isinstance(v, str) for v in frame[key]):
            raise TrainingSetError(f"{key} must hold strings (ids are strings in Aisle)")
    duplicated = frame.duplicated(subset=[*keys, "event_timestamp"])
    if duplicated.any():
        rows = frame.index[duplicated][:5].tolist()
        raise TrainingSetError(f"duplicate label rows (same keys and time) at {rows}")


def check_spark_frame(frame: SparkFrame, keys: list[str]) -> None:
    """`check_frame`'s checks as Spark jobs: two passes over the labels, a few rows back."""
    from pyspark.sql import functions as F

    types = dict(frame.dtypes)
    missing = [c for c in [*keys, "event_timestamp"] if c not in types]
    if missing:
        raise TrainingSetError(f"the labels lack column(s) {', '.join(missing)}")
    if not types["event_timestamp"].startswith("timestamp"):
        raise TrainingSetError(f"event_timestamp must be a time, not {types['event_timestamp']}")
    for key in keys:
        if types[key] != "string":
            raise TrainingSetError(f"{key} must hold strings (ids are strings in Aisle)")
    counts = frame.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count_if(F.col("event_timestamp").isNull()).alias("no_time"),
    ).first()
    if not counts["rows"]:
        raise TrainingSetError("the labels are empty")
    if counts["no_time"]:
        raise TrainingSetError(f"event_timestamp is missing in {counts['no_time']} label rows")
    twice = frame.groupBy(*keys, "event_timestamp").count().where("count > 1")
    examples = [row.asDict() for row in twice.limit(5).collect()]
    if examples:
        raise TrainingSetError(f"duplicate label rows (same keys and time), e.g. {examples}")
