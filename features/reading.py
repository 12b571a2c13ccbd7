"""Stream a raw file as chunks of untyped strings, without losing a single line.

CSV is parsed by pyarrow's streaming reader with every column read as bytes: a line with the wrong
number of fields and a field that is not UTF-8 become *rejected lines* with their reason and line
number, never an exception that kills the run or a row that disappears. Parquet files are read in
row batches and rendered to the same string form, so one validator serves both.

A file that cannot be read at all (missing, empty, no usable header, required columns absent)
raises `RawFileError` naming the file and the problem, before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from aisle.schemas import TableSpec

RAW_SUFFIXES = (".csv", ".parquet")


class RawFileError(ValueError):
    """A raw file that cannot be read at all; the message names the file and the problem."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


@dataclass
class RawChunk:
    """Rows as strings (None where a field is empty), with where each came from."""

    frame: pd.DataFrame  # one column per canonical column present in the file, object dtype
    lines: np.ndarray  # the physical line (CSV, header = 1) or row number (parquet, first = 1)
    rejected: list[dict[str, object]] = field(default_factory=list)  # malformed or undecodable


@dataclass(frozen=True)
class RawFile:
    path: Path
    columns: tuple[str, ...]  # as in the header, in file order
    extra_columns: tuple[str, ...]  # present in the file, not in the schema


def open_raw_file(path: Path, spec: TableSpec, allow_extra_columns: bool) -> RawFile:
    """Check a raw file's header against the schema; raise RawFileError if it cannot be used."""
    if not path.exists():
        raise RawFileError(path, "no such file")
    if path.suffix not in RAW_SUFFIXES:
        raise RawFileError(path, f"unsupported file type {path.suffix!r}; use .csv or .parquet")
    if path.stat().st_size == 0:
        raise RawFileError(path, "the file is empty: not even a header line")
    columns = _parquet_columns(path) if path.suffix == ".parquet" else _csv_header(path)
    if len(set(columns)) != len(columns):
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        raise RawFileError(path, f"duplicate column names in the header: {', '.join(dupes)}")
    missing = [c for c in spec.required if c not in columns]
    if missing:
        raise RawFileError(
            path,
            f"missing required column(s) {', '.join(missing)} for the {spec.name} schema "
            f"(found: {', '.join(columns) or 'none'}; required: {', '.join(spec.required)})",
        )
    extra = () if spec.open_columns else tuple(c for c in columns if c not in spec.names)
    if extra and not allow_extra_columns:
        raise RawFileError(
            path,
            f"column(s) not in the {spec.name} schema: {', '.join(extra)}. Remove them, or set "
            "AISLE_ALLOW_EXTRA_COLUMNS=true to drop them (they are listed in the run summary).",
        )
    return RawFile(path, tuple(columns), extra)


def _csv_header(path: Path) -> list[str]:
    with path.open("rb") as handle:
        first = handle.readline()
    try:
        header = first.decode("utf-8").lstrip("\ufeff").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise RawFileError(path, f"the header line is not valid UTF-8 ({exc.reason})") from None
    columns = [c.strip().strip('"') for c in header.split(",")]
    if not any(columns):
        raise RawFileError(path, "the first line is blank; expected a header line")
    return columns


def _parquet_columns(path: Path) -> list[str]:
    try:
        return list(pq.read_schema(path).names)
    except (pa.ArrowInvalid, OSError) as exc:
        raise RawFileError(path, f"not a readable parquet file ({exc})") from None


def iter_chunks(raw: RawFile, block_bytes: int) -> Iterator[RawChunk]:
    """Yield the file's rows in chunks of roughly `block_bytes` of input."""
    if raw.path.suffix == ".parquet":
        yield from _iter_parquet(raw, max(1, block_bytes // 64))
    else:
        yield from _iter_csv(raw, block_bytes)


def _iter_csv(raw: RawFile, block_bytes: int) -> Iterator[RawChunk]:
    malformed: list[dict[str, object]] = []

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        malformed.append(
            {
                "line": row.number,
                "reason": "malformed_line",
                "detail": f"expected {row.expected_columns} fields, found {row.actual_columns}",
                "raw": row.text,
            }
        )
        return "skip"

    reader = pacsv.open_csv(
        raw.path,
        # One thread keeps line numbers exact in the invalid-row handler.
        read_options=pacsv.ReadOptions(use_threads=False, block_size=block_bytes),
        # A blank line is kept (and quarantined as malformed) so line numbers stay exact.
        parse_options=pacsv.ParseOptions(
            invalid_row_handler=on_invalid_row, ignore_empty_lines=False
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.binary() for c in raw.columns},
            include_columns=[c for c in raw.columns if c not in raw.extra_columns],
        ),
    )
    parsed = 0  # rows handed out so far, to turn row order into line numbers
    reported = 0  # malformed lines already attached to a chunk
    known_bad: list[int] = []
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except pa.ArrowInvalid as exc:  # e.g. an unterminated quote: nothing after it is readable
            raise RawFileError(
                raw.path, f"cannot parse the file after row {parsed} ({exc})"
            ) from None
        known_bad.extend(int(m["line"]) for m in malformed[reported:])
        lines = _line_numbers(parsed, batch.num_rows, known_bad)
        parsed += batch.num_rows
        frame, lines, undecodable = _decode(batch, lines)
        chunk = RawChunk(frame=frame, lines=lines, rejected=malformed[reported:] + undecodable)
        reported = len(malformed)
        yield chunk
    if reported < len(malformed):  # malformed lines after the last good row
        empty = pd.DataFrame({c: pd.Series(dtype=object) for c in raw.columns})
        yield RawChunk(
            frame=empty, lines=np.array([], dtype=np.int64), rejected=malformed[reported:]
        )


def _line_numbers(first_row: int, count: int, bad_lines: list[int]) -> np.ndarray:
    """Physical line of each parsed row: data starts on line 2 and skips the malformed lines."""
    base = np.arange(first_row, first_row + count, dtype=np.int64) + 2
    bad = np.sort(np.asarray(bad_lines, dtype=np.int64))
    lines = base
    for _ in range(len(bad) + 1):  # fixed point: shift past every bad line at or before the row
        shifted = base + np.searchsorted(bad, lines, side="right")
        if np.array_equal(shifted, lines):
            break
        lines = shifted
    return lines


def _decode(
    batch: pa.RecordBatch, lines: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray, list[dict[str, object]]]:
    """Bytes to str; rows with bytes that are not UTF-8 are taken out with their reason."""
    columns: dict[str, list[object] | pa.Array] = {}
    bad_rows: set[int] = set()
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        try:
            columns[name] = pc.cast(column, pa.string())
        except pa.ArrowInvalid:
            values: list[object] = []
            for i, cell in enumerate(column.to_pylist()):
                try:
                    values.append(cell.decode("utf-8"))
                except UnicodeDecodeError:
                    values.append(None)
                    bad_rows.add(i)
            columns[name] = pa.array(values, pa.string())
    table = pa.table(columns)
    frame = table.to_pandas()
    frame = frame.where(frame != "", None)
    rejected: list[dict[str, object]] = []
    if bad_rows:
        keep = np.ones(len(frame), dtype=bool)
        for i in sorted(bad_rows):
            keep[i] = False
            raw_row = {n: _printable(batch.column(n)[i].as_py()) for n in batch.schema.names}
            rejected.append(
                {
                    "line": int(lines[i]),
                    "reason": "invalid_utf8",
                    "detail": "bytes that are not UTF-8",
                    "raw": json.dumps(raw_row, ensure_ascii=False),
                }
            )
        frame = frame[keep].reset_index(drop=True)
        lines = lines[keep]
    return frame, lines, rejected


def _printable(value: object) -> object:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


def _iter_parquet(raw: RawFile, batch_rows: int) -> Iterator[RawChunk]:
    keep = [c for c in raw.columns if c not in raw.extra_columns]
    done = 0
    for batch in pq.ParquetFile(raw.path).iter_batches(batch_size=batch_rows, columns=keep):
        frame = batch.to_pandas()
        for name in frame.columns:
            frame[name] = _render(frame[name])
        lines = np.arange(done + 1, done + 1 + len(frame), dtype=np.int64)
        done += len(frame)
        yield RawChunk(frame=frame.astype(object), lines=lines)


def _render(series: pd.Series) -> pd.Series:
    """Typed parquet values to the string form the CSV path produces."""
    if pd.api.types.is_datetime64_any_dtype(series):
        rendered = series.map(lambda t: t.isoformat(), na_action="ignore")
    else:
        rendered = series.map(str, na_action="ignore")
    return rendered.astype(object).where(series.notna(), None)
