"""The data stage's engines: one SQL definition, run by DuckDB or by Apache Spark.

    AISLE_ENGINE=duckdb   DuckDB in this process (the embedded default)
    AISLE_ENGINE=spark    Spark SQL, local[*] or a cluster (AISLE_SPARK__MASTER)

Every feature table is one query written once in DuckDB's dialect (`features.feature_tables`,
`pricing_tables`, `history_tables`); the Spark engine transpiles it with sqlglot (`sql.to_spark`,
which also rewrites the few DuckDB functions Spark names differently). A query reads its inputs
by view names (`event_files`, `item_file`, ...) that each engine registers over the same parquet
files, and its parameters ($day_end, ...) are bound by each engine.

    with open_engine(settings) as engine:
        engine.register("event_files", paths, schema)
        table = engine.query(sql, {"day_end": ...})      # a pyarrow Table

`spark.spark_session(settings)` is the one place a Spark session is built (the feature tables
and Feast's Spark offline store and compute engine share its configuration).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from core.settings import Settings


class Engine(Protocol):
    """What the feature tables need of an engine."""

    name: str

    def register(self, view: str, files: list[Path], schema: pa.Schema | None = None) -> None:
        """`view` reads these parquet files (none: an empty view of `schema`)."""

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        """The rows of `sql` (DuckDB's dialect) with its $parameters bound."""


@contextmanager
def open_engine(settings: Settings) -> Iterator[Engine]:
    """The settings' engine (AISLE_ENGINE), closed afterwards."""
    if settings.engine == "spark":
        from .spark import SparkEngine

        yield SparkEngine(settings)
        return
    from .duck import DuckEngine

    engine = DuckEngine()
    try:
        yield engine
    finally:
        engine.close()


def used_params(sql: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """The parameters `sql` refers to (both engines reject one the query does not use)."""
    return {k: v for k, v in (params or {}).items() if f"${k}" in sql}
