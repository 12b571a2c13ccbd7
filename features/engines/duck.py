"""The DuckDB engine: the embedded default, in this process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from . import used_params


class DuckEngine:
    name = "duckdb"

    def __init__(self) -> None:
        self.con = duckdb.connect()

    def register(self, view: str, files: list[Path], schema: pa.Schema | None = None) -> None:
        if files:
            relation = self.con.read_parquet([str(f) for f in files])
        elif schema is not None:
            relation = self.con.from_arrow(schema.empty_table())
        else:
            raise ValueError(f"view {view!r}: no files and no schema")
        relation.create_view(view, replace=True)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        return self.con.sql(sql, params=used_params(sql, params)).to_arrow_table()

    def close(self) -> None:
        self.con.close()
