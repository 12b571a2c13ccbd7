"""Data sources. Each yields the canonical tables of `aisle.schemas`.

Built-in sources (movielens, orange_juice, simulator) are *prepared* once by `aisle data fetch`
into `data/sources/<name>/<table>.parquet`: the timeline the replay lands interval by interval.
Any other source setting is the path of a shop's own CSV or parquet export, landed verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from aisle.settings import BUILTIN_SOURCES


@dataclass(frozen=True)
class Source:
    """Where a table's rows come from: a prepared built-in timeline or a shop's file."""

    dataset: str  # the name its zones are kept under
    file: Path | None = None  # set for a shop's file; None for a built-in replay

    @property
    def is_replay(self) -> bool:
        return self.file is None


def resolve(setting: str) -> Source:
    """Interpret a source setting: a built-in name, or a path to a canonical CSV/parquet file."""
    if setting in BUILTIN_SOURCES:
        return Source(setting)
    path = Path(setting).expanduser()
    if path.suffix not in (".csv", ".parquet"):
        raise ValueError(
            f"source {setting!r} is neither a built-in source ({', '.join(BUILTIN_SOURCES)}) "
            "nor a .csv or .parquet file"
        )
    if not path.is_file():
        raise FileNotFoundError(f"source file {path} does not exist")
    dataset = re.sub(r"[^A-Za-z0-9_-]+", "_", path.stem).strip("_") or "shop"
    return Source(dataset, path.resolve())
