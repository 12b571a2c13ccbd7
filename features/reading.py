"""Stream a raw file as chunks of untyped strings, without losing a single line.

CSV is cut into blocks of whole lines and each block parsed by pyarrow with every column read as
bytes: a line with the wrong number of fields, unbalanced quotes or bytes that are not UTF-8
becomes a *rejected line* with its reason and line number, never an exception that kills the run
or a row that disappears. Parquet files are read in row batches and rendered to the same text a
CSV export would hold, so one validator serves both.

A file that cannot be read at all (missing, empty, no usable header, required columns absent)
raises `RawFileError` naming the file and the problem, before anything is written.
"""

from __future__ import annotations

import csv
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

from core.schemas import TableSpec

from .column_map import map_option, split_map

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
    columns: tuple[str, ...]  # as in the header, in file order, under their canonical names
    extra_columns: tuple[str, ...]  # present in the file, not in the schema
    source_columns: tuple[str, ...] = ()  # as in the header, before the column map (if any)
    constants: tuple[tuple[str, str], ...] = ()  # (canonical, value): columns the export lacks


def open_raw_file(
    path: Path,
    spec: TableSpec,
    allow_extra_columns: bool,
    column_map: dict[str, str] | None = None,
) -> RawFile:
    """Check a raw file's header against the schema; raise RawFileError if it cannot be used.

    `column_map` ({canonical: the file's column, or ":constant"}, features.column_map) renames
    the file's columns onto the schema as they are read."""
    if not path.exists():
        raise RawFileError(path, "no such file")
    if path.suffix not in RAW_SUFFIXES:
        raise RawFileError(path, f"unsupported file type {path.suffix!r}; use .csv or .parquet")
    if path.stat().st_size == 0:
        raise RawFileError(path, "the file is empty: not even a header line")
    source = _parquet_columns(path) if path.suffix == ".parquet" else _csv_header(path)
    if len(set(source)) != len(source):
        dupes = sorted({c for c in source if source.count(c) > 1})
        raise RawFileError(path, f"duplicate column names in the header: {', '.join(dupes)}")
    columns, constants = _apply_map(path, spec, source, column_map or {})
    missing = [c for c in spec.required if c not in columns and c not in constants]
    if missing:
        raise RawFileError(path, _missing_message(spec, source, missing, column_map or {}))
    extra = () if spec.open_columns else tuple(c for c in columns if c not in spec.names)
    if extra and not allow_extra_columns:
        raise RawFileError(
            path,
            f"column(s) not in the {spec.name} schema: {', '.join(extra)}. Remove them, or set "
            "AISLE_ALLOW_EXTRA_COLUMNS=true to drop them (they are listed in the run summary).",
        )
    return RawFile(path, tuple(columns), extra, tuple(source), tuple(constants.items()))


def _apply_map(
    path: Path, spec: TableSpec, source: list[str], column_map: dict[str, str]
) -> tuple[list[str], dict[str, str]]:
    """The file's columns under their canonical names, and the constant columns; an error for
    a mapping that names a column outside the schema or absent from the file, or that would
    leave two columns under one name."""
    renames, constants = split_map(column_map)
    unknown = [c for c in column_map if c not in spec.names]
    if unknown:
        raise RawFileError(
            path,
            f"the column map names {', '.join(unknown)}, not a column of the {spec.name} "
            f"schema ({', '.join(spec.names)}); a mapping reads canonical=your_column",
        )
    absent = [f"{k}={v}" for k, v in renames.items() if v not in source]
    if absent:
        raise RawFileError(
            path,
            f"the column map {', '.join(absent)} names a column the file does not have "
            f"(it has: {', '.join(source) or 'none'})",
        )
    twice = sorted({v for v in renames.values() if list(renames.values()).count(v) > 1})
    if twice:
        raise RawFileError(path, f"the column map maps {', '.join(twice)} onto two columns")
    by_source = {v: k for k, v in renames.items()}
    columns = [by_source.get(c, c) for c in source]
    clash = sorted({c for c in columns if columns.count(c) > 1} | (set(constants) & set(columns)))
    if clash:
        raise RawFileError(
            path,
            f"after the column map the file has {', '.join(clash)} twice (its own column and "
            "a mapped one); map only the one to use, or remove the other",
        )
    return columns, constants


def _missing_message(
    spec: TableSpec, source: list[str], missing: list[str], column_map: dict[str, str]
) -> str:
    # The fix, spelled out: the pairs given so far plus one per missing column.
    guess = {c: ":purchase" if c == "event_type" else "<its column>" for c in missing}
    return (
        f"missing required column(s) {', '.join(missing)} for the {spec.name} schema"
        + (" after the column map" if column_map else "")
        + f" (it has: {', '.join(source) or 'none'}; required: {', '.join(spec.required)}). "
        f"Map the export's columns onto the schema with {map_option(column_map | guess)} "
        "(canonical=your_column; `:value` sets a constant for a column the export lacks), "
        f"--map-file, or AISLE_COLUMN_MAP__{spec.name.upper()}"
    )


def _csv_header(path: Path) -> list[str]:
    with path.open("rb") as handle:
        first = handle.readline()
    try:
        header = first.decode("utf-8").lstrip("\ufeff").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise RawFileError(path, f"the header line is not valid UTF-8 ({exc.reason})") from None
    try:
        columns = [c.strip() for c in next(csv.reader([header], strict=True), [])]
    except csv.Error as exc:
        raise RawFileError(path, f"the header line is not valid CSV ({exc})") from None
    if not any(columns):
        raise RawFileError(path, "the first line is blank; expected a header line")
    return columns


def _parquet_columns(path: Path) -> list[str]:
    try:
        return list(pq.read_schema(path).names)
    except (pa.ArrowInvalid, OSError) as exc:
        raise RawFileError(path, f"not a readable parquet file ({exc})") from None


def iter_chunks(raw: RawFile, spec: TableSpec, block_bytes: int) -> Iterator[RawChunk]:
    """Yield the file's rows in chunks of roughly `block_bytes` of input."""
    chunks = (
        _iter_parquet(raw, spec, max(1, block_bytes // 64))
        if raw.path.suffix == ".parquet"
        else _iter_csv(raw, block_bytes)
    )
    for chunk in chunks:
        for name, value in raw.constants:  # a column the export lacks, the same on every row
            chunk.frame[name] = value
        yield chunk


def _iter_csv(raw: RawFile, block_bytes: int) -> Iterator[RawChunk]:
    """Cut the file into blocks of whole lines ourselves and parse each block on its own.

    pyarrow's streaming reader reads ahead without bound when parsing is slower than the disk
    (the whole file, in practice), so memory would grow with the file; blocks cut here keep it
    at one block. One record per line is the format (quoted commas are fine, quoted newlines
    are not), so a block's lines are its records and line numbers are exact.
    """
    kept = [c for c in raw.columns if c not in raw.extra_columns]
    with raw.path.open("rb") as handle:
        handle.readline()  # the header, already checked
        first_line, carry = 2, b""
        while True:
            data = handle.read(block_bytes)
            block = carry + data
            if not block:
                break
            if data:
                cut = block.rfind(b"\n")
                if cut < 0:  # a line longer than a block: read on
                    carry = block
                    continue
                block, carry = block[: cut + 1], block[cut + 1 :]
            else:
                carry = b""  # the last line has no newline
            yield _parse_block(raw, kept, block, first_line)
            first_line += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)


def _parse_block(raw: RawFile, kept: list[str], block: bytes, first_line: int) -> RawChunk:
    malformed: list[pacsv.InvalidRow] = []

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        malformed.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.py_buffer(block),
            read_options=pacsv.ReadOptions(
                column_names=list(raw.columns), use_threads=False, block_size=len(block) + 1
            ),
            # A blank line is a record too (quarantined), so records and lines stay one to one.
            parse_options=pacsv.ParseOptions(
                invalid_row_handler=on_invalid_row, ignore_empty_lines=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.binary() for c in raw.columns}, include_columns=kept
            ),
        )
    except pa.ArrowInvalid as exc:
        raise RawFileError(raw.path, f"cannot parse lines from {first_line} on ({exc})") from None
    if any("\n" in row.text for row in malformed):  # a quote ran across lines
        return _parse_lines_one_by_one(raw, kept, block, first_line)
    bad_lines = [first_line + row.number - 1 for row in malformed]
    rejected: list[dict[str, object]] = [
        {
            "line": line,
            "reason": "malformed_line",
            "detail": f"expected {row.expected_columns} fields, found {row.actual_columns}",
            "raw": row.text,
        }
        for line, row in zip(bad_lines, malformed, strict=True)
    ]
    lines = _line_numbers(first_line, table.num_rows, bad_lines)
    frame, lines, undecodable = _decode(table, lines)
    return RawChunk(frame=frame, lines=lines, rejected=rejected + undecodable)


def _parse_lines_one_by_one(
    raw: RawFile, kept: list[str], block: bytes, first_line: int
) -> RawChunk:
    """The slow path for a block where a quote runs past the end of its line: each line is
    parsed alone, and a line whose quotes do not balance is quarantined as `unbalanced_quote`."""
    rows: list[list[str]] = []
    lines: list[int] = []
    rejected: list[dict[str, object]] = []
    keep = [raw.columns.index(c) for c in kept]
    lines_of_block = block.split(b"\n")
    if block.endswith(b"\n"):
        lines_of_block.pop()
    for offset, line_bytes in enumerate(lines_of_block):
        number = first_line + offset
        text = line_bytes.rstrip(b"\r").decode("utf-8", "backslashreplace")
        try:
            line_bytes.decode("utf-8")
            fields = next(csv.reader([text], strict=True), [""] * len(raw.columns))
        except UnicodeDecodeError:
            rejected.append(_rejection(number, "invalid_utf8", "bytes that are not UTF-8", text))
            continue
        except csv.Error as exc:
            rejected.append(_rejection(number, "unbalanced_quote", str(exc), text))
            continue
        if len(fields) != len(raw.columns):
            detail = f"expected {len(raw.columns)} fields, found {len(fields)}"
            rejected.append(_rejection(number, "malformed_line", detail, text))
            continue
        rows.append([fields[i] or None for i in keep])
        lines.append(number)
    frame = pd.DataFrame(rows, columns=kept, dtype=object)
    return RawChunk(frame=frame, lines=np.asarray(lines, dtype=np.int64), rejected=rejected)


def _rejection(line: int, reason: str, detail: str, raw_text: str) -> dict[str, object]:
    return {"line": line, "reason": reason, "detail": detail, "raw": raw_text}


def _line_numbers(first_line: int, count: int, bad_lines: list[int]) -> np.ndarray:
    """Physical line of each parsed row: rows follow each other, skipping the malformed lines."""
    base = np.arange(count, dtype=np.int64) + first_line
    bad = np.sort(np.asarray(bad_lines, dtype=np.int64))
    lines = base
    for _ in range(len(bad) + 1):  # fixed point: shift past every bad line at or before the row
        shifted = base + np.searchsorted(bad, lines, side="right")
        if np.array_equal(shifted, lines):
            break
        lines = shifted
    return lines


def _decode(
    batch: pa.Table, lines: np.ndarray
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


def _iter_parquet(raw: RawFile, spec: TableSpec, batch_rows: int) -> Iterator[RawChunk]:
    # (canonical name, the file's name) of each kept column; the two differ where mapped
    names = list(zip(raw.columns, raw.source_columns or raw.columns, strict=True))
    keep = [(c, s) for c, s in names if c not in raw.extra_columns]
    kinds = {c.name: c.kind for c in spec.columns}
    done = 0
    try:
        batches = pq.ParquetFile(raw.path).iter_batches(
            batch_size=batch_rows, columns=[s for _, s in keep]
        )
        for batch in batches:
            rendered = {c: _render(batch.column(s), kinds.get(c, "text")) for c, s in keep}
            frame = pa.table(rendered).to_pandas().astype(object)
            frame = frame.where(frame.notna(), None)
            lines = np.arange(done + 1, done + 1 + len(frame), dtype=np.int64)
            done += len(frame)
            yield RawChunk(frame=frame, lines=lines)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise RawFileError(raw.path, f"cannot read parquet rows after row {done} ({exc})") from None


def _render(values: pa.Array, kind: str) -> pa.Array:
    """A typed parquet column as the text a CSV export would hold for it."""
    if pa.types.is_timestamp(values.type):
        if values.type.tz is not None:
            values = pc.cast(values, pa.timestamp(values.type.unit, "UTC"))
        fmt = "%Y-%m-%d" if kind == "date" else "%Y-%m-%dT%H:%M:%S"
        text = pc.strftime(values, format=fmt)
        return text if kind == "date" else pc.binary_join_element_wise(text, "Z", "")
    if pa.types.is_date(values.type):
        return pc.strftime(values, format="%Y-%m-%d")
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    try:
        return pc.cast(values, pa.string())  # integers stay integers, even beside nulls
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([None if v is None else str(v) for v in values.to_pylist()], pa.string())
