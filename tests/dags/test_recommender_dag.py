"""The recommender_training DAG: wiring, and a real `dag.test` run on five weeks of MovieLens that
builds a point-in-time training set, trains, and registers a `challenger` in MLflow with lineage."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pyarrow.parquet as pq
import pytest

from aisle import airflow_env
from aisle.replay import load_dag
from core.settings import Settings

START, END = "1997-09-20", "1997-10-25"


@pytest.fixture(scope="module")
def dag():
    return load_dag("recommender_training")


def test_tasks_build_validate_train_register_then_gate(dag):
    assert dag.get_task("validate").upstream_task_ids == {"training_set"}
    assert dag.get_task("train").upstream_task_ids == {"validate"}  # bad data never trains
    assert dag.get_task("register").upstream_task_ids == {"train"}
    assert dag.get_task("gate").upstream_task_ids == {"register"}
    assert dag.timetable.asset_condition.name == f"retrain_{dag.dag_id.removesuffix('_training')}"
    assert dag.doc_md and "Rerun" in dag.doc_md
    assert dag.default_args["retries"] == 2
    assert set(dag.params) == {"end", "epochs", "spectral_rank", "force_promote"}
    assert dag.params["force_promote"] is False  # off unless an engineer turns it on
    assert [o.name for o in dag.get_task("gate").outlets] == ["challenger_recommender"]


@pytest.fixture(scope="module")
def five_weeks(prepared_settings: Settings, tmp_path_factory) -> Settings:
    """Curated MovieLens interactions of five weeks with their features, valid and test 7 days."""
    from features.ingest import ingest
    from features.pipeline import run_features

    data_dir = tmp_path_factory.mktemp("recommender") / "data"
    data_dir.mkdir()
    (data_dir / "sources").symlink_to(prepared_settings.sources_dir.resolve())
    settings = prepared_settings.model_copy(
        update={"data_dir": data_dir, "recommender_valid_days": 7, "recommender_test_days": 7}
    )
    ingest("interactions", START, END, settings)
    run_features("interactions", START, END, settings)
    return settings


@pytest.mark.integration
@pytest.mark.slow
def test_a_run_registers_a_challenger_with_its_lineage(five_weeks, dag):
    import mlflow
    from mlflow import MlflowClient

    from training.recommender.registry import load_recommender
    from training.tracking import point_at_store
    from training.training_sets import Windows, training_set_path

    airflow_env.migrate_db(five_weeks)
    with airflow_env.configured(five_weeks):  # the settings of the DAG's tasks
        run = dag.test(run_conf={"end": END, "epochs": 1})
    assert str(run.state) == "success"

    point_at_store(five_weeks)
    client = MlflowClient()
    version = client.get_model_version_by_alias("recommender", "challenger")
    tags = version.tags
    assert tags["feature_service"] == "recommender_history_v1"
    assert len(tags["feature_definitions_sha256"]) == 64
    assert tags["data_interval_end"] == "1997-10-25T00:00:00+00:00"
    assert tags["git_commit"] != "unknown"

    mlflow_run = client.get_run(version.run_id)
    assert mlflow_run.data.params["epochs"] == "1"
    assert mlflow_run.data.tags["aisle.dataset"] == "movielens"
    curve = client.get_metric_history(version.run_id, "valid_ndcg_at_10")
    assert [m.step for m in curve] == [0, 1]
    artifacts = {a.path for a in client.list_artifacts(version.run_id)}
    assert {"learning_curve.png", "evaluation", "checkpoint"} <= artifacts
    table = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/evaluation/table.json")
    assert set(table["models"]) >= {"aisle (ours)", "popularity"}
    ours, popularity = table["models"]["aisle (ours)"], table["models"]["popularity"]
    # five weeks of data are little, but a personal model still beats the most-popular list
    assert ours["ndcg@10"] > popularity["ndcg@10"]

    # the registered model answers through its signature, and serving gets the Recommender
    model = mlflow.pyfunc.load_model("models:/recommender@challenger")
    assert model.metadata.signature is not None
    windows = Windows.days_before(datetime(1997, 10, 25, tzinfo=UTC), 7, 7)
    path = training_set_path(five_weeks, "recommender", "movielens", windows)
    frame = pq.read_table(path).to_pandas()
    history = list(frame[frame.role == "test"].history_item_ids.iloc[0])
    answer = model.predict(pd.DataFrame({"history_item_ids": [history, []], "k": [5, 5]}))
    assert [len(ids) for ids in answer.item_ids] == [5, 5]
    assert list(answer.fallback) == [False, True]
    assert not set(answer.item_ids[0]) & set(history)
    recommender = load_recommender("models:/recommender@challenger")
    assert recommender.metadata["lineage"]["mlflow_run_id"] == version.run_id


@pytest.mark.integration
@pytest.mark.slow
def test_the_training_set_has_no_leakage(five_weeks):
    """Histories hold only events before their cut; targets only new items of the next window."""
    from training.recommender.dataset import build_training_set
    from training.training_sets import Windows

    windows = Windows.days_before(datetime(1997, 10, 25, tzinfo=UTC), 7, 7)
    frame = pq.read_table(build_training_set(five_weeks, "movielens", windows)).to_pandas()
    from features.sources import movielens

    log = movielens.load()["interactions"]
    log["timestamp"] = pd.to_datetime(log["timestamp"], utc=True)
    for role, cut, until in [
        ("fit", windows.train_end, windows.valid_end),
        ("test", windows.valid_end, windows.end),
    ]:
        rows = frame[frame.role == role].set_index("user_id")
        before = log[log.timestamp < cut].groupby("user_id").item_id.agg(set)
        after = log[(log.timestamp >= cut) & (log.timestamp < until)].groupby("user_id").item_id
        assert set(rows.index) == set(before.index)
        for user, row in rows.sample(50, random_state=0).iterrows():
            assert set(row.history_item_ids) == before[user]
            new = set(after.get_group(user)) - before[user] if user in after.groups else set()
            assert set(row.target_item_ids) == new
