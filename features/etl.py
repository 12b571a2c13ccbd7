"""ETL for one table of one dataset over one data interval: raw -> curated + quarantine + summary.

    raw/<dataset>/<table>/date=<interval>/*.csv|parquet        (landed; read first)
    raw/<dataset>/interactions/stream/date=<day>/*.parquet    (the event stream's, each day of
                                                               the interval; interactions only)
        -> parse + validate (features.reading, features.validation), chunk by chunk
        -> staged per day, then per day: later rows with an earlier row's event_id dropped as
           duplicates (counted; one event delivered twice, or by the stream and an export), exact
           duplicates removed (counted), rows that share an event key but differ elsewhere
           quarantined as `conflicting_duplicate`
        -> curated/<dataset>/<table>/date=<day>/part-0.parquet      (one atomic file per day)
        -> quarantine/<dataset>/<table>/date=<interval>/quarantine.parquet
        -> runs/<dataset>/<table>/date=<interval>.json             (the summary, written last)

Memory is bounded by the chunk size and the largest single day, not by the file. Outputs depend
only on the raw partition and the stream's days of the interval, so a rerun gives byte-identical
files; every day of the interval gets a partition, empty if nothing happened, so a rerun also
clears what an earlier run wrote there.
Counts reconcile: rows_in == curated + quarantined + duplicates, or the run fails.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.files import write_json_atomic, write_parquet_atomic
from core.schemas import TableSpec, table_spec
from core.settings import BUILTIN_SOURCES, Settings

from .reading import RAW_SUFFIXES, RawChunk, RawFile, RawFileError, iter_chunks, open_raw_file
from .storage import Interval, partition_dir, stream_partition_dir
from .validation import validate

log = logging.getLogger(__name__)

CURATED_FILE = "part-0.parquet"
QUARANTINE_FILE = "quarantine.parquet"
# Staging-only columns: where a row came from, and its input position, so that "the first
# occurrence" of a duplicate is well defined and a quarantined conflict names its line.
_ORDER, _FILE, _LINE = "_order", "_source_file", "_line"
EVENT_ID = "event_id"  # the idempotency key: rows that share one are one event
_STAGING_FIELDS = [
    pa.field(_ORDER, pa.int64()),
    pa.field(_FILE, pa.string()),
    pa.field(_LINE, pa.int64()),
]
_ARROW_TYPES = {
    "id": pa.string(),
    "category": pa.string(),
    "text": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "float": pa.float64(),
    "int": pa.int64(),
    "flag": pa.bool_(),
}
QUARANTINE_SCHEMA = pa.schema(
    [
        ("source_file", pa.string()),
        ("line", pa.int64()),
        ("reason", pa.string()),
        ("reasons", pa.string()),
        ("raw", pa.string()),
    ]
)


class NothingLandedError(FileNotFoundError):
    """The raw partition for the interval holds no file, nor does the stream for its days."""


@dataclass
class EtlSummary:
    dataset: str
    table: str
    interval: str
    raw_files: list[str]
    rows_in: int = 0
    curated: int = 0
    duplicates: int = 0
    quarantined: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    # Curated purchases with no price (an order log's usual shape): kept, their price missing.
    purchases_without_price: int = 0
    dropped_columns: dict[str, list[str]] = field(default_factory=dict)
    curated_partitions: list[str] = field(default_factory=list)
    quarantine_file: str = ""

    @property
    def reconciles(self) -> bool:
        return self.rows_in == self.curated + self.quarantined + self.duplicates

    def to_dict(self) -> dict[str, object]:
        return asdict(self) | {"reconciles": self.reconciles}


def curated_schema(spec: TableSpec, extra_columns: list[str] | None = None) -> pa.Schema:
    fields = [pa.field(c.name, _ARROW_TYPES[c.kind]) for c in spec.columns]
    fields += [pa.field(name, pa.string()) for name in extra_columns or []]
    return pa.schema(fields)


def run_etl(settings: Settings, dataset: str, table: str, interval: Interval) -> EtlSummary:
    """Validate the interval's raw partition into curated day partitions; return the summary."""
    spec = table_spec(table)
    key = interval.partition_key(snapshot=spec.time_column is None)
    raw_dir = partition_dir(settings.raw_dir, dataset, table, key)
    paths = (
        sorted(p for p in raw_dir.glob("*") if p.suffix in RAW_SUFFIXES) if raw_dir.exists() else []
    )
    landed = len(paths)
    paths += _stream_files(settings, dataset, table, interval)
    if not paths:
        stream = ""
        if table == "interactions":
            stream = ", and the event stream delivered nothing for its days"
        raise NothingLandedError(
            f"nothing landed in {raw_dir} for {dataset}/{table} {interval}{stream}; land it "
            f"first (`aisle etl` lands and validates; the ingest DAG's land task lands)"
        )
    # Every header is checked before anything is written: a bad file fails the run cleanly.
    # The column map describes a shop's export; a built-in source's files and the stream's are
    # Aisle's own, in the canonical schema.
    column_map = {} if dataset in BUILTIN_SOURCES else settings.column_map.get(table) or {}
    raw_files = [
        open_raw_file(p, spec, settings.allow_extra_columns, column_map if i < landed else None)
        for i, p in enumerate(paths)
    ]
    extras = sorted({c for f in raw_files for c in f.columns if c not in spec.names})
    schema = curated_schema(spec, extras if spec.open_columns else None)
    summary = EtlSummary(dataset, table, str(interval), [str(p) for p in paths])
    summary.dropped_columns = {
        str(f.path): list(f.extra_columns) for f in raw_files if f.extra_columns
    }

    started = time.perf_counter()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".etl-staging-", dir=settings.data_dir))
    try:
        stage = _Stage(staging / "rows", pa.schema([*schema, *_STAGING_FIELDS]))
        quarantine = _Quarantine(staging / QUARANTINE_FILE)
        order = 0
        for raw_file in raw_files:
            for chunk in iter_chunks(raw_file, spec, settings.etl_block_bytes):
                summary.rows_in += len(chunk.frame) + len(chunk.rejected)
                valid, bad = _validate_chunk(chunk, raw_file, spec, interval)
                valid[_ORDER] = range(order, order + len(valid))
                order += len(valid)
                stage.add(valid, spec, key)
                quarantine.add(bad)
        # Everything is written under staging/ first; it is published only once it reconciles.
        ready: list[tuple[Path, Path]] = []
        for day in [d.isoformat() for d in interval.days()] if spec.time_column else [key]:
            day_rows, duplicates, conflicts = _deduplicate(stage.read(day), spec)
            summary.duplicates += duplicates
            summary.curated += len(day_rows)
            summary.purchases_without_price += _purchases_without_price(day_rows)
            quarantine.add(conflicts)
            final = partition_dir(settings.curated_dir, dataset, table, day) / CURATED_FILE
            staged = write_parquet_atomic(_to_arrow(day_rows, schema), staging / f"{day}.parquet")
            ready.append((staged, final))
            summary.curated_partitions.append(str(final))
        qfile = partition_dir(settings.quarantine_dir, dataset, table, key) / QUARANTINE_FILE
        ready.append((quarantine.close(), qfile))
        summary.quarantine_file = str(qfile)
        summary.quarantined = quarantine.rows
        summary.quarantined_by_reason = dict(sorted(quarantine.reasons.items()))
        if not summary.reconciles:
            raise RuntimeError(f"ETL counts do not reconcile for {dataset}/{table} {interval}")
        for staged, final in ready:  # each rename is atomic: a reader sees old or new, whole
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    # Written last: a summary always describes a complete, published run.
    write_json_atomic(summary.to_dict(), summary_path(settings, dataset, table, interval))
    log.info(
        "etl %s/%s %s: %d in, %d curated, %d quarantined, %d duplicates in %.1fs",
        dataset,
        table,
        interval,
        summary.rows_in,
        summary.curated,
        summary.quarantined,
        summary.duplicates,
        time.perf_counter() - started,
    )
    return summary


def _stream_files(settings: Settings, dataset: str, table: str, interval: Interval) -> list[Path]:
    """The event stream's files for each day of the interval (each day belongs to one interval),
    day by day, by name within a day; only the interactions table has a stream. Hidden names
    are skipped (a writer's temporary file, not yet a batch)."""
    if table != "interactions":
        return []
    files: list[Path] = []
    for day in interval.days():
        folder = stream_partition_dir(settings.raw_dir, dataset, day)
        if folder.is_dir():
            batches = (p for p in folder.glob("*.parquet") if not p.name.startswith("."))
            files += sorted(p for p in batches if p.is_file())
    return files


def summary_path(settings: Settings, dataset: str, table: str, interval: Interval) -> Path:
    key = interval.partition_key(snapshot=table_spec(table).time_column is None)
    return settings.runs_dir / dataset / table / f"date={key}.json"


def _validate_chunk(
    chunk: RawChunk, raw_file: RawFile, spec: TableSpec, interval: Interval
) -> tuple[pd.DataFrame, pd.DataFrame]:
    valid, bad = validate(chunk.frame, spec, interval, [name for name, _ in raw_file.constants])
    valid[_FILE] = str(raw_file.path)
    valid[_LINE] = chunk.lines[valid.index.to_numpy()]
    bad_frame = pd.DataFrame(
        {
            "source_file": str(raw_file.path),
            "line": chunk.lines[bad.index.to_numpy()] if len(bad) else [],
            "reason": bad["reason"].to_numpy(),
            "reasons": bad["reasons"].to_numpy(),
            "raw": chunk.frame.loc[bad.index].to_json(orient="records", lines=True).splitlines()
            if len(bad)
            else [],
        }
    )
    lines = pd.DataFrame(chunk.rejected, columns=["line", "reason", "detail", "raw"])
    unreadable = pd.DataFrame(
        {
            "source_file": str(raw_file.path),
            "line": lines["line"],
            "reason": lines["reason"],
            "reasons": lines["reason"] + ": " + lines["detail"],
            "raw": lines["raw"],
        },
        columns=bad_frame.columns,
    )
    return valid.reset_index(drop=True), pd.concat([bad_frame, unreadable], ignore_index=True)


class _Stage:
    """Valid rows spilled to parquet, one small file per chunk and day, each closed at once.

    Memory stays one chunk deep however many days the input spans (an open writer per day
    would hold its buffers until the end: ~0.5 MB a day, 1.7 GB for five years of history).
    """

    def __init__(self, root: Path, schema: pa.Schema) -> None:
        self.root, self.schema = root, schema
        self.root.mkdir(parents=True, exist_ok=True)
        self.chunks = 0

    def add(self, rows: pd.DataFrame, spec: TableSpec, snapshot_key: str) -> None:
        if rows.empty:
            return
        if spec.time_column:
            # UTC instants (or naive dates) to calendar days; much faster than strftime per row.
            moments = pd.to_datetime(rows[spec.time_column])
            if moments.dt.tz is not None:
                moments = moments.dt.tz_convert(None)
            days = moments.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
        else:
            days = np.full(len(rows), np.datetime64(snapshot_key, "D"))
        self.chunks += 1
        for day, part in rows.groupby(days, sort=True):
            folder = self.root / str(np.datetime64(day, "D"))
            folder.mkdir(exist_ok=True)
            pq.write_table(_to_arrow(part, self.schema), folder / f"{self.chunks:08d}.parquet")

    def read(self, key: str) -> pd.DataFrame:
        folder = self.root / key
        parts = sorted(folder.glob("*.parquet")) if folder.exists() else []
        tables = [pq.read_table(p, schema=self.schema) for p in parts]
        table = pa.concat_tables(tables) if tables else self.schema.empty_table()
        return table.to_pandas().sort_values(_ORDER, kind="stable")


def _purchases_without_price(rows: pd.DataFrame) -> int:
    if "event_type" not in rows or "price" not in rows:
        return 0
    return int(((rows["event_type"] == "purchase") & rows["price"].isna()).sum())


def _deduplicate(rows: pd.DataFrame, spec: TableSpec) -> tuple[pd.DataFrame, int, pd.DataFrame]:
    """Drop repeats of an event (keep the first): later rows with an earlier row's event_id,
    whatever their other values, then exact repeats; quarantine later rows that reuse an event
    key with other values. Returns (kept rows, repeats dropped, conflicts)."""
    content = [c for c in rows.columns if c not in (_ORDER, _FILE, _LINE)]
    if EVENT_ID in rows:
        ids = rows[EVENT_ID]
        redelivered = ids.notna().to_numpy() & ids.duplicated(keep="first").to_numpy()
        rows = rows[~redelivered]
    else:
        redelivered = np.zeros(len(rows), dtype=bool)
    exact = rows.duplicated(subset=content, keep="first")
    unique = rows[~exact]
    conflict = unique.duplicated(subset=list(spec.key), keep="first")
    conflicts = pd.DataFrame(
        {
            "source_file": unique.loc[conflict, _FILE],
            "line": unique.loc[conflict, _LINE],
            "reason": "conflicting_duplicate",
            "reasons": "conflicting_duplicate: same "
            + ", ".join(spec.key)
            + " as an earlier row, other values differ",
            "raw": unique.loc[conflict, content]
            .to_json(orient="records", lines=True, date_format="iso")
            .splitlines()
            if conflict.any()
            else [],
        }
    )
    kept = unique[~conflict]
    sort_by = ([spec.time_column] if spec.time_column else []) + list(spec.key)
    kept = kept.sort_values(sort_by, kind="stable").drop(columns=[_ORDER, _FILE, _LINE])
    repeats = int(redelivered.sum()) + int(exact.sum())
    return kept.reset_index(drop=True), repeats, conflicts.reset_index(drop=True)


def _to_arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    columns = {}
    for f in schema:
        if f.name in frame:
            values = frame[f.name]
            if pa.types.is_date32(f.type):
                values = pd.to_datetime(values).dt.date
            columns[f.name] = pa.array(values, type=f.type, from_pandas=True)
        else:
            columns[f.name] = pa.nulls(len(frame), type=f.type)
    return pa.table(columns, schema=schema)


class _Quarantine:
    """Rejected rows streamed to one parquet file as they are found, counted by reason."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer = pq.ParquetWriter(path, QUARANTINE_SCHEMA, compression="zstd")
        self.rows = 0
        self.reasons: Counter[str] = Counter()

    def add(self, rejected: pd.DataFrame) -> None:
        if rejected.empty:
            return
        rejected = rejected.astype({"line": "Int64"})
        rejected = rejected.sort_values(["source_file", "line", "reason"], kind="stable")
        self.writer.write_table(
            pa.Table.from_pandas(rejected, schema=QUARANTINE_SCHEMA, preserve_index=False)
        )
        self.rows += len(rejected)
        self.reasons.update(rejected["reason"].tolist())

    def close(self) -> Path:
        self.writer.close()
        return self.path


__all__ = ["EtlSummary", "NothingLandedError", "RawFileError", "curated_schema", "run_etl"]
