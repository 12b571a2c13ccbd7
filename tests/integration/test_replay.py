"""The ingest DAGs replay the real timelines end to end, and the counts reconcile with the data."""

from __future__ import annotations

import pandas as pd
import pytest

from aisle import replay
from features import online
from features.feature_tables import feature_dir
from features.summary import zone_summary

pytestmark = [pytest.mark.integration, pytest.mark.slow]


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
