"""The ETL's contract: counts reconcile, reruns are byte-identical, writes are atomic."""

from __future__ import annotations

import hashlib

import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import features.etl as etl_module
from features import reading
from features.etl import run_etl, summary_path
from features.storage import Interval

WEEK = Interval.parse("2024-03-01", "2024-03-08")
HEADER = "user_id,item_id,timestamp,event_type,price,quantity\n"


def _rows(n: int, day: int = 1) -> str:
    return "".join(
        f"u{i % 7},i{i % 11},2024-03-{day + i % 7:02d}T{i % 24:02d}:00:00Z,"
        f"purchase,{1 + i % 5}.5,1\n"
        for i in range(n)
    )


def _digest(paths) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _outputs(settings):
    return sorted(
        p
        for zone in ("curated", "quarantine", "runs")
        for p in (settings.data_dir / zone).rglob("*")
        if p.is_file()
    )


def test_one_partition_per_day_of_the_interval_sorted_and_typed(settings, land_raw):
    land_raw(HEADER + _rows(200), interval=WEEK)
    summary = run_etl(settings, "shop", "interactions", WEEK)
    assert [p.split("date=")[1][:10] for p in summary.curated_partitions] == [
        f"2024-03-{d:02d}" for d in range(1, 8)
    ]
    day = pd.read_parquet(summary.curated_partitions[0])
    assert (day["timestamp"].dt.date.astype(str) == "2024-03-01").all()
    assert day["timestamp"].is_monotonic_increasing
    schema = pq.read_schema(summary.curated_partitions[0])
    assert str(schema.field("timestamp").type) == "timestamp[us, tz=UTC]"
    assert str(schema.field("quantity").type) == "int64"
    total = sum(len(pd.read_parquet(p)) for p in summary.curated_partitions)
    assert total == summary.curated


def test_rerun_gives_byte_identical_outputs(settings, land_raw):
    land_raw(HEADER + _rows(300) + "u1,i1\n" + "x,y,2024-03-02T00:00:00Z,view,-1,\n", interval=WEEK)
    run_etl(settings, "shop", "interactions", WEEK)
    first = _digest(_outputs(settings))
    run_etl(settings, "shop", "interactions", WEEK)
    assert _digest(_outputs(settings)) == first
    assert len(first) == 7 + 1 + 1  # seven days, the quarantine, the summary


def test_rerun_after_the_raw_data_changed_replaces_every_day(settings, land_raw):
    land_raw(HEADER + _rows(300), interval=WEEK)
    run_etl(settings, "shop", "interactions", WEEK)
    land_raw(HEADER + _rows(3), interval=WEEK)  # fewer rows: some days are now empty
    summary = run_etl(settings, "shop", "interactions", WEEK)
    assert sum(len(pd.read_parquet(p)) for p in summary.curated_partitions) == 3


def test_a_crash_while_writing_leaves_the_old_partition(settings, land_raw, monkeypatch):
    land_raw(HEADER + _rows(50), interval=WEEK)
    first = run_etl(settings, "shop", "interactions", WEEK)
    before = _digest(_outputs(settings))
    land_raw(HEADER + _rows(80), interval=WEEK)

    real_write = pq.write_table
    calls = {"n": 0}

    def crash_on_third_partition(table, where, **kwargs):
        calls["n"] += ".tmp" in str(where)  # count the atomic writes of final files only
        if calls["n"] == 3:
            with open(where, "wb") as handle:  # half a file, then the process "dies"
                handle.write(b"PAR1 half a parquet file")
            raise KeyboardInterrupt("simulated crash")
        return real_write(table, where, **kwargs)

    monkeypatch.setattr(pq, "write_table", crash_on_third_partition)  # core.files writes with it
    with pytest.raises(KeyboardInterrupt):
        run_etl(settings, "shop", "interactions", WEEK)
    monkeypatch.undo()

    after = _digest(_outputs(settings))
    third = first.curated_partitions[2]
    assert after[third] == before[third]  # the partition being written is the old one, whole
    for path in _outputs(settings):
        pq.read_table(path) if path.suffix == ".parquet" else path.read_text()  # all readable
    assert not [p for p in settings.data_dir.rglob("*.tmp")]  # no temporary file left behind
    assert not [p for p in settings.data_dir.glob(".etl-staging-*")]
    assert (
        after[str(summary_path(settings, "shop", "interactions", WEEK))]
        == before[str(summary_path(settings, "shop", "interactions", WEEK))]
    )  # the summary is written last: it still describes the last complete run


def test_chunk_size_does_not_change_the_result(settings, land_raw, monkeypatch):
    land_raw(HEADER + _rows(2000) + "u1,i1\n" + _rows(500), interval=WEEK)
    reference = run_etl(settings, "shop", "interactions", WEEK)
    frames = [pd.read_parquet(p) for p in reference.curated_partitions]
    sizes = []

    def tiny_chunks(raw, spec, block_bytes):
        for chunk in reading.iter_chunks(raw, spec, 4096):
            sizes.append(len(chunk.frame))
            yield chunk

    monkeypatch.setattr(etl_module, "iter_chunks", tiny_chunks)
    chunked = run_etl(settings, "shop", "interactions", WEEK)
    assert len(sizes) > 10  # duplicates and conflicts span chunks, and are still found
    assert chunked.to_dict() == reference.to_dict()
    for frame, path in zip(frames, chunked.curated_partitions, strict=True):
        pd.testing.assert_frame_equal(frame, pd.read_parquet(path))


GOOD_LINE = st.builds(
    lambda u, i, d, h, e, p, q: f"u{u},i{i},2024-03-0{d}T{h:02d}:00:00Z,{e},{p},{q}\n",
    st.integers(0, 5),
    st.integers(0, 5),
    st.integers(1, 7),
    st.integers(0, 23),
    st.sampled_from(["view", "add_to_cart", "purchase"]),
    st.sampled_from(["2.5", "10"]),
    st.sampled_from(["1", "2"]),
)
BAD_LINE = st.sampled_from(
    [
        "u1,i1\n",
        "u1,i1,2024-03-02T00:00:00Z,view,,,,\n",
        "u1,i1,2024-03-02T00:00:00Z,purchase,-1,1\n",
        "u1,i1,2024-03-02T00:00:00Z,purchase,,1\n",
        "u1,i1,2030-01-01T00:00:00Z,view,,\n",
        "u1,i1,not-a-time,view,,\n",
        "u1,i1,2024-03-02T00:00:00Z,teleport,,\n",
        "u1,i1,2024-03-02T00:00:00Z,purchase,1.0,0\n",
        "\n",
    ]
)


@hsettings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(st.one_of(GOOD_LINE, BAD_LINE), max_size=60))
def test_counts_always_reconcile(settings, land_raw, lines):
    land_raw(HEADER + "".join(lines), interval=WEEK)
    summary = run_etl(settings, "shop", "interactions", WEEK)
    assert summary.rows_in == len(lines)
    assert summary.rows_in == summary.curated + summary.quarantined + summary.duplicates
    curated = sum(len(pd.read_parquet(p)) for p in summary.curated_partitions)
    assert curated == summary.curated
    assert len(pd.read_parquet(summary.quarantine_file)) == summary.quarantined
    assert sum(summary.quarantined_by_reason.values()) == summary.quarantined
