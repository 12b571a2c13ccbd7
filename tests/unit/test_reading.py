"""Reading raw files: what a shop's real exports look like, parsed without losing a line."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.schemas import INTERACTIONS, SALES
from features.reading import RawFileError, iter_chunks, open_raw_file


def read_all(path, spec=INTERACTIONS, block_bytes=1 << 20):
    raw = open_raw_file(path, spec, allow_extra_columns=False)
    chunks = list(iter_chunks(raw, spec, block_bytes))
    frame = pd.concat([c.frame for c in chunks], ignore_index=True)
    lines = [int(x) for c in chunks for x in c.lines]
    rejected = [r for c in chunks for r in c.rejected]
    return frame, lines, rejected


def test_bom_crlf_spaces_in_header_and_quoted_commas(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(
        b"\xef\xbb\xbf user_id , item_id ,timestamp,event_type\r\n"
        b'u1,i1,2024-03-01T10:00:00Z,view\r\n"Smith, J.",i2,2024-03-01T10:00:00Z,view\r\n'
    )
    frame, lines, rejected = read_all(path)
    assert frame["user_id"].tolist() == ["u1", "Smith, J."]
    assert frame["event_type"].tolist() == ["view", "view"]  # no stray carriage return
    assert lines == [2, 3]
    assert rejected == []


def test_an_unbalanced_quote_costs_one_line_not_the_rest_of_the_file(tmp_path):
    good = "u{0},i1,2024-03-01T10:00:00Z,view\n"
    path = tmp_path / "export.csv"
    path.write_text(
        "user_id,item_id,timestamp,event_type\n"
        + good.format(1)
        + '"u2,i1,2024-03-01T10:00:00Z,view\n'  # the quote never closes
        + "".join(good.format(i) for i in range(3, 53))
    )
    frame, lines, rejected = read_all(path)
    assert len(frame) == 51
    assert [(r["line"], r["reason"]) for r in rejected] == [(3, "unbalanced_quote")]
    assert lines[:3] == [2, 4, 5]


@pytest.mark.parametrize("block_bytes", [64, 200, 1 << 20])
def test_line_numbers_are_exact_whatever_the_block_size(tmp_path, block_bytes):
    rows = [f"u{i},i{i},2024-03-01T10:00:00Z,view\n" for i in range(40)]
    rows[7] = "u7,i7\n"
    rows[20] = "\n"
    path = tmp_path / "export.csv"
    path.write_text("user_id,item_id,timestamp,event_type\n" + "".join(rows))
    frame, lines, rejected = read_all(path, block_bytes=block_bytes)
    assert [r["line"] for r in rejected] == [9]
    assert len(frame) == 39 and len(lines) == 39
    assert 9 not in lines and lines[-1] == 41
    blank = frame.index[frame.isna().all(axis=1)].tolist()
    assert [lines[i] for i in blank] == [22]  # the blank line is a row, quarantined later


def test_a_last_line_without_newline_is_read(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("user_id,item_id,timestamp,event_type\nu1,i1,2024-03-01T10:00:00Z,view")
    frame, lines, _ = read_all(path, block_bytes=16)
    assert frame["event_type"].tolist() == ["view"] and lines == [2]


def test_parquet_values_are_rendered_as_an_export_would_write_them(tmp_path):
    table = pa.table(
        {
            "item_id": pa.array([7, None, 12], pa.int64()),
            "store_id": pa.array(["s1", "s1", "s2"]),
            "week_start": pa.array(pd.to_datetime(["2024-03-04"] * 3)),
            "price": pa.array([1.25, 2.0, 3.5]),
            "units": pa.array([3, 4, 5], pa.int32()),
        }
    )
    path = tmp_path / "sales.parquet"
    pq.write_table(table, path)
    frame, lines, _ = read_all(path, spec=SALES)
    assert frame["item_id"].tolist() == ["7", None, "12"]  # not "7.0"
    assert frame["week_start"].tolist() == ["2024-03-04"] * 3  # a date, not a timestamp
    assert frame["price"].tolist() == ["1.25", "2", "3.5"]
    assert lines == [1, 2, 3]


def test_a_file_that_is_not_parquet_is_a_clear_error(tmp_path):
    path = tmp_path / "sales.parquet"
    path.write_bytes(b"this is not parquet")
    with pytest.raises(RawFileError, match="not a readable parquet file"):
        open_raw_file(path, SALES, allow_extra_columns=False)
