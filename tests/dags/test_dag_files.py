"""DAG files must not shadow the project's packages: Airflow puts the dags folder on sys.path."""

from __future__ import annotations

import pytest

from aisle import airflow_env

PACKAGES = {"core", "aisle", "features", "training", "serving", "monitoring"}


@pytest.mark.parametrize("path", sorted((airflow_env.PROJECT_DIR / "dags").glob("*.py")))
def test_a_dag_file_is_not_named_like_a_package(path):
    assert path.stem not in PACKAGES


def test_every_dag_says_what_it_does_what_it_reads_and_how_to_rerun_it():
    from aisle.replay import load_dag

    for dag_id in ("ingest_interactions", "ingest_sales", "features", "recommender_training",
                   "pricing_training", "promote_model", "drift_monitor",
                   "forget_user"):  # fmt: skip
        doc = load_dag(dag_id).doc_md or ""
        assert doc.lstrip().startswith("###"), dag_id  # a title, then what it does
        for section in ("**Inputs**", "**Rerun**"):
            assert section in doc, f"{dag_id}: no {section}"


def test_forget_user_asks_for_the_user_and_runs_only_when_triggered():
    from aisle.replay import load_dag

    dag = load_dag("forget_user")
    assert type(dag.timetable).__name__ == "NullTimetable"  # by hand only
    assert set(dag.params) == {"user_id"} and [t.task_id for t in dag.tasks] == ["forget"]


def _asset_names(dag) -> set[str]:
    condition = dag.timetable.asset_condition
    return {a.name for a in getattr(condition, "objects", [condition])}


def test_the_loop_is_wired_by_assets_from_ingest_to_promotion():
    """ingest → features → drift_monitor → training → gate → promote_model, each by an Asset."""
    from aisle.replay import load_dag

    ingest, features = load_dag("ingest_sales"), load_dag("features")
    assert [o.name for o in ingest.get_task("etl_sales").outlets] == ["curated_sales"]
    assert _asset_names(features) == {"curated_interactions", "curated_sales"}
    assert [o.name for o in features.get_task("materialize").outlets] == ["online_features"]
    assert _asset_names(load_dag("drift_monitor")) == {"online_features"}
    for model in ("recommender", "pricing"):
        training = load_dag(f"{model}_training")
        assert _asset_names(training) == {f"retrain_{model}"}
        assert [o.name for o in training.get_task("gate").outlets] == [f"challenger_{model}"]
    promote = load_dag("promote_model")
    assert _asset_names(promote) == {"challenger_recommender", "challenger_pricing"}
    assert promote.max_active_runs == 1  # one promotion at a time


def test_a_replay_ends_the_calendars_with_its_timeline(monkeypatch):
    """AISLE_CALENDAR_END: no wall-clock run of an ingest or training DAG after it."""
    from datetime import UTC, datetime

    from airflow.serialization.serialized_objects import LazyDeserializedDAG

    from aisle.replay import load_dag

    monkeypatch.setenv("AISLE_CALENDAR_END", "1998-04-26T00:00:00+00:00")
    end = datetime(1998, 4, 26, tzinfo=UTC)
    for dag_id in (
        "ingest_interactions",
        "ingest_sales",
        "recommender_training",
        "pricing_training",
    ):
        dag = load_dag(dag_id)
        assert dag.end_date == end, dag_id
        # as the scheduler sees it: no next run, though the cron would have one for "now"
        serialized = LazyDeserializedDAG.from_dag(dag)
        assert serialized.next_dagrun_info(last_automated_run_info=None) is None, dag_id
