"""Data sources. Each yields the canonical tables of `core.schemas`.

Built-in sources (movielens, orange_juice, simulator) are *prepared* once by `aisle data fetch`
into `data/sources/<name>/<table>.parquet`: the timeline the replay lands interval by interval.
Any other source setting is the path of a shop's own CSV or parquet export, landed verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from core.settings import BUILTIN_SOURCES

from ..reading import RAW_SUFFIXES

PLACEHOLDER = re.compile(r"\{[^}]*\}")


@dataclass(frozen=True)
class Source:
    """Where a table's rows come from: a prepared built-in timeline or a shop's file."""

    dataset: str  # the name its zones are kept under
    # A shop's file; `{start:%Y-%m-%d}` / `{end:...}` placeholders name one file per interval.
    file: str | None = None

    @property
    def is_replay(self) -> bool:
        return self.file is None

    def file_for(self, start: datetime, end: datetime) -> Path:
        """The shop's file for the interval [start, end)."""
        if self.file is None:
            raise ValueError(f"{self.dataset} is a built-in source, not a file")
        path = Path(self.file.format(start=start, end=end)).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"no file for [{start}, {end}) at {path}")
        return path


def resolve(setting: str) -> Source:
    """Interpret a source setting: a built-in name, or a path to a canonical CSV/parquet file.

    A path may name one file per data interval with placeholders, e.g.
    `/exports/events_{start:%Y-%m-%d}.csv`; the scheduled DAG then lands each interval's file.
    """
    if setting in BUILTIN_SOURCES:
        return Source(setting)
    path = Path(setting).expanduser()
    if path.suffix not in RAW_SUFFIXES:
        raise ValueError(
            f"source {setting!r} is neither a built-in source ({', '.join(BUILTIN_SOURCES)}) "
            "nor a .csv or .parquet file"
        )
    templated = PLACEHOLDER.search(setting) is not None
    if not templated and not path.is_file():
        raise FileNotFoundError(f"source file {path} does not exist")
    stem = PLACEHOLDER.sub("", path.stem)
    dataset = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_-") or "shop"
    return Source(dataset, setting if templated else str(path.resolve()))
