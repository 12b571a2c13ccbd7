"""Land one data interval of a table into the raw zone, as a shop's export would arrive.

A replay source writes the rows of its prepared timeline that fall inside the interval as CSV
(attribute tables: the snapshot as known at the interval's end). A shop's file is copied as it
is: the interval's own file where the source names one per interval (`{start:%Y-%m-%d}`).
Either way the partition is replaced atomically, so landing the same interval twice gives
the same bytes.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds

from core.files import write_with
from core.schemas import table_spec
from core.settings import Settings

from .sources import Source, resolve
from .storage import Interval, partition_dir

# Simulated items carry the date they appear; only those known by the interval's end are landed.
INTRODUCED_AT = "introduced_at"


@dataclass(frozen=True)
class Landed:
    dataset: str
    table: str
    path: Path
    rows: int | None  # None for a shop's file: its rows are counted by the ETL


def prepared_path(settings: Settings, dataset: str, table: str) -> Path:
    return settings.sources_dir / dataset / f"{table}.parquet"


def land(
    settings: Settings, table: str, interval: Interval, source: Source | str | None = None
) -> Landed:
    """Land `table` for `interval` from `source` (default: the configured source of the table)."""
    if source is None:
        source = settings.source_for(table)
    if isinstance(source, str):
        source = resolve(source)
    snapshot = table_spec(table).time_column is None
    target_dir = partition_dir(
        settings.raw_dir, source.dataset, table, interval.partition_key(snapshot)
    )
    if source.file is not None:
        export = source.file_for(interval.start, interval.end)
        final = target_dir / f"{table}{export.suffix}"
        _clear_other_files(target_dir, keep=final.name)
        write_with(final, lambda tmp: shutil.copyfile(export, tmp))
        return Landed(source.dataset, table, final, None)

    rows = _replay_rows(settings, source.dataset, table, interval)
    final = target_dir / f"{table}.csv"
    _clear_other_files(target_dir, keep=final.name)
    write_with(final, lambda tmp: write_csv(rows, tmp))
    return Landed(source.dataset, table, final, len(rows))


def _replay_rows(settings: Settings, dataset: str, table: str, interval: Interval) -> pd.DataFrame:
    path = prepared_path(settings, dataset, table)
    if not path.exists():
        raise FileNotFoundError(
            f"{dataset} has no prepared {table} table at {path}; run `aisle data fetch` first"
        )
    spec = table_spec(table)
    data = ds.dataset(path)
    if spec.time_column:
        column = ds.field(spec.time_column)
        field_type = data.schema.field(spec.time_column).type
        start, end = _bound(interval.start, field_type), _bound(interval.end, field_type)
        rows = data.to_table(filter=(column >= start) & (column < end)).to_pandas()
        return rows.sort_values([spec.time_column, *spec.key], kind="stable")
    rows = data.to_table().to_pandas()
    if INTRODUCED_AT in rows:
        known = pd.to_datetime(rows[INTRODUCED_AT], utc=True) < pd.Timestamp(interval.end)
        rows = rows[known]
    return rows


def _bound(moment: pd.Timestamp, field_type: object) -> pd.Timestamp:
    ts = pd.Timestamp(moment)
    return ts if getattr(field_type, "tz", None) else ts.tz_convert(None)


def write_csv(rows: pd.DataFrame, tmp: Path) -> None:
    """Write rows as a shop's CSV export: ISO 8601 UTC timestamps, dates as YYYY-MM-DD."""
    rows = rows.copy()
    for name in rows.columns:
        if pd.api.types.is_datetime64_any_dtype(rows[name]):
            has_time = (rows[name].dt.normalize() != rows[name]).any()
            fmt = "%Y-%m-%dT%H:%M:%SZ" if has_time or rows[name].dt.tz else "%Y-%m-%d"
            rows[name] = rows[name].dt.strftime(fmt)
    rows.to_csv(tmp, index=False, lineterminator="\n")


def _clear_other_files(folder: Path, keep: str) -> None:
    if folder.exists():
        for stale in folder.iterdir():
            if stale.name != keep and not stale.name.startswith("."):
                stale.unlink()
