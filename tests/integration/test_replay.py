"""The ingest DAGs replay the real timelines end to end, and the counts reconcile with the data."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pandas as pd
import pytest

from aisle import replay
from features.summary import zone_summary

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize(
    ("schedule", "first", "last", "expected"),
    [
        ("@daily", datetime(1997, 9, 20, 3, tzinfo=UTC), datetime(1997, 9, 22, 1, tzinfo=UTC), 3),
        ("@weekly", datetime(1997, 9, 20, 3, tzinfo=UTC), datetime(1998, 4, 22, tzinfo=UTC), 32),
        ("0 0 * * 4", datetime(1990, 6, 14, tzinfo=UTC), datetime(1992, 10, 1, tzinfo=UTC), 121),
    ],
)
def test_intervals_cover_the_timeline_without_gaps(schedule, first, last, expected):
    found = replay.intervals(schedule, first, last)
    assert len(found) == expected
    assert found[0].start <= first < found[0].end
    assert found[-1].start <= last < found[-1].end
    assert all(a.end == b.start for a, b in itertools.pairwise(found))


@pytest.mark.parametrize(
    ("flow", "schedule", "dataset", "rows"),
    [
        ("interactions", "@weekly", "movielens", 100_000),
        ("sales", "0 0 * * 4", "orange_juice", 106_139),
    ],
)
def test_full_replay_through_airflow_reconciles(prepared_copy, flow, schedule, dataset, rows):
    settings = prepared_copy.model_copy(update={f"{flow}_schedule": schedule})
    runs = replay.replay(settings, flow)

    assert all(run.state == "success" for run in runs)
    totals = {(t.dataset, t.table): t for t in zone_summary(settings)}
    events = totals[(dataset, flow)]
    assert events.runs == len(runs)
    assert events.rows_in == rows  # every row of the data set went through the ETL once
    assert events.curated + events.quarantined + events.duplicates == rows
    assert events.reconciles
    curated = settings.curated_dir / dataset / flow
    assert sum(len(pd.read_parquet(p)) for p in curated.glob("date=*/part-0.parquet")) == (
        events.curated
    )
