"""The ingest DAGs: they import cleanly, wire what the docs say, and run for real in Airflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from aisle import airflow_env
from features.etl import summary_path
from features.storage import Interval

DAGS = airflow_env.PROJECT_DIR / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"ingest_interactions", "ingest_sales"} <= set(dagbag.dag_ids)


@pytest.mark.parametrize(
    ("dag_id", "outlets"),
    [
        (
            "ingest_interactions",
            {"etl_interactions": ["curated_interactions"], "attributes": ["curated_items"]},
        ),
        (
            "ingest_sales",
            {"etl_sales": ["curated_sales"], "attributes": ["curated_items", "curated_stores"]},
        ),
    ],
)
def test_dag_wiring(dagbag, dag_id, outlets):
    dag = dagbag.dags[dag_id]
    flow = dag_id.removeprefix("ingest_")
    assert dag.doc_md and "Rerun" in dag.doc_md
    assert dag.default_args["retries"] == 2
    assert dag.get_task(f"etl_{flow}").upstream_task_ids == {f"land_{flow}"}
    for task_id, names in outlets.items():
        assert [a.name for a in dag.get_task(task_id).outlets] == names


def test_data_interval_spans_the_schedule_period(dagbag):
    import pendulum
    from airflow.serialization.encoders import coerce_to_core_timetable

    timetable = coerce_to_core_timetable(dagbag.dags["ingest_sales"].timetable)
    interval = timetable.infer_manual_data_interval(
        run_after=pendulum.datetime(1990, 6, 21, tz="UTC")
    )
    assert (interval.end - interval.start).days == 7  # Airflow 3's plain cron would give 0


@pytest.mark.integration
@pytest.mark.slow
def test_airflow_dags_test_runs_the_ingest_for_real(prepared_copy):
    """`airflow dags test` (a real DAG run, its own process) lands and curates one day."""
    env = {**os.environ, "AISLE_DATA_DIR": str(prepared_copy.data_dir)}
    airflow_env.migrate_db(prepared_copy)
    airflow = str(Path(sys.executable).parent / "airflow")
    # The run whose data interval is 1997-10-01 (a manual run covers the period before its date).
    result = subprocess.run(
        [airflow, "dags", "test", "ingest_interactions", "1997-10-02"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    interval = Interval.parse("1997-10-01", "1997-10-02")
    summary = json.loads(
        summary_path(prepared_copy, "movielens", "interactions", interval).read_text()
    )
    assert summary["reconciles"] and summary["curated"] > 0
    day = pd.read_parquet(summary["curated_partitions"][0])
    assert len(day) == summary["curated"]
    items = summary_path(prepared_copy, "movielens", "items", interval)
    assert json.loads(items.read_text())["curated"] == 1682


@pytest.mark.integration
def test_an_unreadable_export_fails_the_run_at_once(settings, tmp_path):
    """A file that cannot be read fails the same way on every try: no retries, a clear error."""
    from datetime import UTC, datetime

    from aisle.replay import load_dag

    export = tmp_path / "events.csv"
    export.write_text("")
    settings.interactions_source = str(export)
    airflow_env.migrate_db(settings)
    with airflow_env.configured(settings):  # the settings of the DAG and its tasks
        dag = load_dag("ingest_interactions")
        run = dag.test(logical_date=datetime(2024, 3, 2, tzinfo=UTC))

    assert str(run.state) == "failed"
    states = {ti.task_id: (str(ti.state), ti.try_number) for ti in run.get_task_instances()}
    assert states["land_interactions"] == ("success", 1)
    assert states["etl_interactions"] == ("failed", 1)
