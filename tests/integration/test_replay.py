"""The ingest DAGs replay the real timelines, an interval per Airflow run, and the counts
reconcile with the data: a few intervals of each here; the whole of both timelines, with the
same reconciliation, in benchmarks/replay.py."""

from __future__ import annotations

import pandas as pd
import pytest

from aisle import replay
from features import online
from features.feature_tables import feature_dir
from features.summary import zone_summary

pytestmark = [pytest.mark.integration, pytest.mark.slow]


INTERVALS = 3  # the first weeks of each timeline: several runs, each its own partition


@pytest.mark.parametrize(
    ("flow", "schedule", "dataset"),
    [("interactions", "@weekly", "movielens"), ("sales", "0 0 * * 4", "orange_juice")],
)
def test_a_replay_through_airflow_reconciles(prepared_copy, flow, schedule, dataset):
    settings = prepared_copy.model_copy(update={f"{flow}_schedule": schedule})
    planned = replay.plan(settings, flow)[:INTERVALS]
    start, end = planned[0].start, planned[-1].end
    runs = replay.replay(settings, flow, start, end)

    assert [run.interval for run in runs] == planned
    assert all(run.state == "success" for run in runs)
    totals = {(t.dataset, t.table): t for t in zone_summary(settings)}
    events = totals[(dataset, flow)]
    assert events.runs == len(runs)
    rows = replay.source_rows(settings, flow, start, end)
    assert rows > 1_000  # weeks with data in them
    assert events.rows_in == rows  # every row of the span went through the ETL once
    assert events.curated + events.quarantined + events.duplicates == rows
    assert events.reconciles
    snapshots = {"movielens": {"items": 1_682}, "orange_juice": {"items": 11, "stores": 83}}
    for table, count in snapshots[dataset].items():
        assert totals[(dataset, table)].snapshot
        assert totals[(dataset, table)].curated == count  # the latest snapshot, not a sum
    curated = settings.curated_dir / dataset / flow
    assert sum(len(pd.read_parquet(p)) for p in curated.glob("date=*/part-0.parquet")) == (
        events.curated
    )

    # Each ingest run was followed by a features run: every curated day (interactions) or sales
    # week has its feature tables, and the online store answers with the newest of them.
    view, table, keys, column = {
        "interactions": ("user_activity_fv", "user_activity", ["user_id"], "events_30d"),
        "sales": ("item_price_fv", "item_price", ["item_id", "store_id"], "price"),
    }[flow]
    tables = sorted(feature_dir(settings, dataset, table).glob("date=*/part-0.parquet"))
    days_with_data = [p for p in curated.glob("date=*/part-0.parquet") if pd.read_parquet(p).size]
    expected = len(list(curated.glob("date=*"))) if flow == "interactions" else len(days_with_data)
    assert len(tables) == expected
    newest = pd.read_parquet(tables[-1]).head(20)
    found = online.online_features(settings, view, newest[keys].to_dict("records"))
    assert all(found.known)
    assert found.features[column] == newest[column].tolist()
