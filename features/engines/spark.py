"""The Spark engine: Spark SQL over the same parquet files, in local[*] or on a cluster.

`spark_session(settings)` is the one place a session is built: the feature tables here, and
Feast's Spark offline store and compute engine through `spark_conf(settings)`, start the same.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from core.settings import Settings

from . import used_params
from .sql import to_spark

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def spark_conf(settings: Settings) -> dict[str, str]:
    """Every spark.* setting of Aisle's sessions. Python workers (Feast's materialisation runs
    Python on them) use this interpreter, which has Aisle's packages, not the PATH's python3."""
    return {
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        **settings.spark.spark_conf(),
    }


def spark_session(settings: Settings) -> SparkSession:
    """The process's Spark session with the settings' configuration (created on first use).

    Without Java, pyspark's gateway dies with a message about JAVA_HOME; say instead which
    setting chose Spark and how to get Java."""
    from pyspark.errors import PySparkRuntimeError
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("aisle")
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except PySparkRuntimeError as error:
        if error.getCondition() != "JAVA_GATEWAY_EXITED":
            raise
        raise RuntimeError(
            "AISLE_ENGINE=spark, but Spark could not start: its Java gateway exited. Spark needs "
            "Java 17 or newer: `make java` installs OpenJDK (or point JAVA_HOME at a JDK), or set "
            "AISLE_ENGINE=duckdb to run the data stage in this process."
        ) from error


class SparkEngine:
    """Spark SQL over the views' parquet files; results come back to this process as Arrow (a
    feature table's partition is one file written here, as on DuckDB)."""

    name = "spark"

    def __init__(self, settings: Settings) -> None:
        self.spark = spark_session(settings)

    def register(self, view: str, files: list[Path], schema: pa.Schema | None = None) -> None:
        if files:
            frame = self.spark.read.parquet(*(str(f) for f in files))
        elif schema is not None:
            frame = self.spark.createDataFrame(schema.empty_table())
        else:
            raise ValueError(f"view {view!r}: no files and no schema")
        frame.createOrReplaceTempView(view)

    def frame(self, sql: str, params: dict[str, Any] | None = None) -> DataFrame:
        """`sql`'s rows left in Spark (nothing is computed until they are used)."""
        return self.spark.sql(to_spark(sql), args=used_params(sql, params))

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        return self.frame(sql, params).toArrow()
