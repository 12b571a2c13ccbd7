"""The pricing_training DAG: wiring, and a real `dag.test` run on twenty weeks of Dominick's
orange juice that builds a point-in-time training set, trains, registers a version in MLflow
with its lineage, plots and evaluation, and gates it against the strongest in-run reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from aisle import airflow_env
from aisle.replay import load_dag
from core.settings import Settings
from features.sources.orange_juice import week_start

FIRST, END = week_start(40), week_start(60)


@pytest.fixture(scope="module")
def dag():
    return load_dag("pricing_training")


def test_tasks_build_validate_train_register_then_gate(dag):
    assert dag.get_task("validate").upstream_task_ids == {"training_set"}
    assert dag.get_task("train").upstream_task_ids == {"validate"}  # bad data never trains
    assert dag.get_task("register").upstream_task_ids == {"train"}
    assert dag.get_task("gate").upstream_task_ids == {"register"}
    assert dag.timetable.asset_condition.name == f"retrain_{dag.dag_id.removesuffix('_training')}"
    assert dag.doc_md and "Rerun" in dag.doc_md
    assert dag.default_args["retries"] == 2
    assert set(dag.params) == {"end", "members", "max_iter", "force_promote"}
    assert dag.params["force_promote"] is False  # off unless an engineer turns it on
    assert [o.name for o in dag.get_task("gate").outlets] == ["challenger_pricing"]


@pytest.fixture(scope="module")
def twenty_weeks(prepared_settings: Settings, tmp_path_factory) -> Settings:
    """Curated orange juice sales of twenty weeks with their features; valid and test 3 weeks."""
    from features.ingest import ingest, ingest_attributes
    from features.pipeline import run_features

    data_dir = tmp_path_factory.mktemp("pricing") / "data"
    data_dir.mkdir()
    (data_dir / "sources").symlink_to(prepared_settings.sources_dir.resolve())
    settings = prepared_settings.model_copy(
        update={
            "data_dir": data_dir,
            "sales_source": "orange_juice",
            "pricing_valid_weeks": 3,
            "pricing_test_weeks": 3,
            # the DAG's wiring and lineage are this module's subject; the structure search's
            # quality is benchmarks/pricing.py's: two structures, one fold (6 fits, not 24)
            "training_config": {"pricing": {"structures": ["pooled", "lean"], "valid_folds": 1}},
        }
    )
    ingest_attributes("sales", FIRST - timedelta(days=1), FIRST, settings)  # stores first
    ingest("sales", FIRST, END, settings)
    run_features("sales", FIRST, END, settings)
    return settings


@pytest.mark.integration
@pytest.mark.slow
def test_a_run_registers_a_challenger_with_its_lineage(twenty_weeks, dag):
    import mlflow
    from mlflow import MlflowClient

    from training.pricing.dataset import MODEL, PricingData
    from training.pricing.registry import load_pricing, model_input_example
    from training.tracking import point_at_store
    from training.training_sets import Windows, training_set_path

    airflow_env.migrate_db(twenty_weeks)
    with airflow_env.configured(twenty_weeks):  # the settings of the DAG's tasks
        # 14 fit weeks; the gate holds the model to the strongest reference of the run
        # (measured: 0.585 against untuned gradient boosting (c) 0.604)
        run = dag.test(run_conf={"end": END.isoformat(), "members": 2})
    assert str(run.state) == "success"

    point_at_store(twenty_weeks)
    client = MlflowClient()
    version = client.get_model_version_by_alias("pricing", "challenger")
    tags = version.tags
    assert tags["aisle.gate"] == "passed", tags.get("aisle.gate.reasons")
    assert "aisle.gate.forced_by" not in tags  # no override was needed
    assert tags["feature_service"] == "pricing_v1"
    assert len(tags["feature_definitions_sha256"]) == 64
    assert tags["data_interval_end"] == f"{END.isoformat()}T00:00:00+00:00"
    assert tags["git_commit"] != "unknown"
    assert float(tags["test_rmse"]) > 0

    mlflow_run = client.get_run(version.run_id)
    assert mlflow_run.data.params["members"] == "2"
    assert mlflow_run.data.tags["aisle.dataset"] == "orange_juice"
    assert len(client.get_metric_history(version.run_id, "valid_rmse")) == 3  # the l2 grid
    artifacts = {a.path for a in client.list_artifacts(version.run_id)}
    assert {"training_curves.png", "price_response.png", "evaluation", "checkpoint"} <= artifacts
    table = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/evaluation/table.json")
    models = table["models"]
    assert len(models) == 6 and {m["rows"] for m in models.values()} == {table["rows"]["test"]}
    # far from the naive forecast (measured 0.58 against 1.17 on these weeks)
    ours = models["aisle (ours)"]["rmse"]
    assert ours < 0.85 * models["(d) last value"]["rmse"]
    # what the gate passed it on: better than every reference fitted in the same run
    assert ours < min(m["rmse"] for name, m in models.items() if name != "aisle (ours)"), models
    assert all(stats["max"] < 0 for stats in table["elasticity_by_item"].values()), (
        "an own-price elasticity is not negative"
    )

    # the registered model answers through its signature, and serving gets the PricingModel
    model = mlflow.pyfunc.load_model("models:/pricing@challenger")
    assert model.metadata.signature is not None
    windows = Windows.weeks_before(datetime.combine(END, datetime.min.time(), UTC), 3, 3)
    test = PricingData.load(training_set_path(twenty_weeks, MODEL, "orange_juice", windows)).test
    answer = model.predict(model_input_example(test.head(5)))
    assert (answer.elasticity < 0).all() and np.isfinite(answer.units).all()
    pricing = load_pricing("models:/pricing@challenger")
    assert pricing.metadata["lineage"]["mlflow_run_id"] == version.run_id
    assert len(pricing.members) == 2


@pytest.mark.integration
@pytest.mark.slow
def test_the_training_set_is_point_in_time(twenty_weeks):
    """Each row's features are the shelf of its own week and the demand of the week before."""
    from training.pricing.dataset import build_training_set
    from training.training_sets import Windows

    windows = Windows.weeks_before(datetime.combine(END, datetime.min.time(), UTC), 3, 3)
    frame = pd.read_parquet(build_training_set(twenty_weeks, "orange_juice", windows))
    assert set(frame.role) == {"fit", "valid", "test"}
    frame["week"] = frame.event_timestamp.dt.tz_localize(None)
    units = frame.set_index(["item_id", "store_id", "week"]).units
    sample = frame[frame.units_lag1.notna()].sample(200, random_state=0)
    for row in sample.itertuples():
        previous = units.get((row.item_id, row.store_id, row.week - pd.Timedelta(weeks=1)))
        assert previous == row.units_lag1  # last week's units, never this week's
    first_week = frame[frame.week == frame.week.min()]
    assert first_week.units_lag1.isna().all()  # nothing known before the first week
    assert (frame.role == "test").sum() == len(frame[frame.event_timestamp >= windows.valid_end])


@pytest.mark.integration
@pytest.mark.slow
def test_drift_of_the_last_week_with_the_champions_proposed_prices(twenty_weeks):
    """The drift monitor's pricing check on the weeks the DAG run left behind: feature drift of
    the last week against the four before the champion's data end with calibrated thresholds,
    its proposed prices, and its realised RMSE against the band of its test weeks."""
    import json

    from mlflow import MlflowClient

    from monitoring.monitor import drift_check_step
    from training.tracking import CHAMPION, point_at_store, set_alias

    point_at_store(twenty_weeks)
    version = MlflowClient().get_model_version_by_alias("pricing", "challenger").version
    set_alias("pricing", CHAMPION, version)  # as a promotion would; its data end is END
    last_week = END - timedelta(days=7)
    record = drift_check_step("pricing", last_week, END, twenty_weeks)
    assert record["champion_version"] == str(version)
    assert record["reference"]["end"].startswith(last_week.isoformat())
    assert {c["column"] for c in record["columns"]} >= {"price_ratio", "log_units"}
    proposed = record["prediction"]
    assert [c["column"] for c in proposed["columns"]] == ["proposed_price_ratio"]
    assert proposed["rows"] >= 50  # of the 100 rows sampled, quoted (known pairs with a shelf)
    folder = twenty_weeks.data_dir / "monitoring" / "pricing" / last_week.isoformat()
    assert (folder / "predictions.html").stat().st_size > 10_000
    saved = json.loads((folder / "drift.json").read_text())
    assert saved["model"] == "pricing" and saved["dataset"] == "orange_juice"
    # thresholds calibrated on the weeks before the champion's data end, each against its own
    # four weeks before (the first weeks of the twenty have none and are left out)
    calibration = saved["calibration"]
    assert calibration["calibrated"] and 4 <= len(calibration["chunks"]) <= 10, calibration
    used = {c["column"]: c["threshold"] for c in saved["columns"]}
    assert used == {c: band["threshold"] for c, band in calibration["bands"].items()}
    # the champion's realised RMSE on the last week, one of its own test weeks: inside its band
    performance = record["performance"]
    assert performance["metric"] == "rmse" and performance["judged"], performance
    assert not performance["dropped"], performance["reason"]
    band = performance["band"]
    assert band["window"]["end"].startswith(END.isoformat()) and band["chunks"] == 3
    assert band["low"] <= performance["value"] <= band["high"]
