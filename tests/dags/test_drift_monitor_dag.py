"""The drift_monitor DAG: wiring, and real `dag.test` runs on curated simulator data with a taste
shift and a champion trained before it: a clean day passes quietly (no drift, the champion's
realised NDCG inside its band), the first shifted day reports the drift with calibrated
thresholds and emits the retrain Asset because the realised performance dropped (reason
"performance"), a rerun of that day is held back by the cool-down; the training DAGs listen to
that Asset."""

from __future__ import annotations

import json

import pytest

from aisle import airflow_env
from aisle.replay import load_dag
from core.settings import Settings

SHIFT = "2024-02-05"


@pytest.fixture(scope="module")
def dag():
    return load_dag("drift_monitor")


def test_wiring(dag):
    assert dag.get_task("check").upstream_task_ids == {"intervals"}
    for model in ("recommender", "pricing"):
        task = dag.get_task(f"retrain_{model}")
        assert task.upstream_task_ids == {"check"}
        assert [o.name for o in task.outlets] == [f"retrain_{model}"]
    assert dag.doc_md and "Rerun" in dag.doc_md
    # after the features DAG, so a retrain finds the interval's features in place
    assert dag.timetable.asset_condition.name == "online_features"


@pytest.fixture(scope="module")
def shifted_shop(tmp_path_factory) -> Settings:
    """Five weeks of curated simulator interactions, tastes shifting on SHIFT."""
    from core.settings import get_settings
    from features.ingest import ingest
    from features.sources.prepare import prepare

    settings = get_settings(
        data_dir=tmp_path_factory.mktemp("drift") / "data",
        interactions_source="simulator",
        # a retrain is asked for only when the history covers the training windows
        # (test + 2 x valid days): 21 of the shop's 42 days
        recommender_valid_days=7,
        recommender_test_days=7,
        simulator={
            "events": 3_000 * 42,
            "users": 5_000,
            "items": 2_000,
            "days": 42,
            "drift": {"taste_shift_at": SHIFT, "taste_shift_strength": 0.5},
        },
    )
    prepare(settings, "simulator")
    ingest("interactions", "2024-01-01", "2024-02-12", settings)
    register_champion(settings)
    return settings


def register_champion(settings: Settings) -> None:
    """A champion of the data up to the shift (the factor form: quick to fit), trained as the
    pipeline trains: on the days before its test window (the 7 days before the shift)."""
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    from core.clock import as_utc as utc
    from monitoring.monitor import read_curated
    from serving.sandbox import register
    from training.recommender.factors import FactorConfig, FactorRecommender
    from training.tracking import CHAMPION, set_alias

    test_start = utc(SHIFT) - pd.Timedelta(days=settings.recommender_test_days)
    events = read_curated(settings, "simulator", "interactions", utc("2024-01-01"), test_start)
    users = {u: n for n, u in enumerate(events.user_id.unique())}
    items = sorted(events.item_id.unique())
    column = {i: n for n, i in enumerate(items)}
    matrix = sp.csr_matrix(
        (np.ones(len(events)), (events.user_id.map(users), events.item_id.map(column))),
        shape=(len(users), len(items)),
    )
    version = register(
        settings, "recommender", FactorRecommender.fit(matrix, items, FactorConfig(rank=16))
    )
    end = pd.Timestamp(SHIFT, tz="UTC").isoformat()
    set_alias("recommender", CHAMPION, version, {"data_interval_end": end})


def run(dag, settings: Settings, day: str, next_day: str) -> dict[str, str]:
    airflow_env.migrate_db(settings)
    with airflow_env.configured(settings):  # the settings of the DAG's tasks
        result = dag.test(run_conf={"flow": "interactions", "start": day, "end": next_day})
    return {ti.task_id: str(ti.state) for ti in result.get_task_instances()}


@pytest.mark.integration
@pytest.mark.slow
def test_drift_is_reported_and_retrains_once(dag, shifted_shop):
    settings = shifted_shop
    folder = settings.data_dir / "monitoring" / "recommender"

    clean = run(dag, settings, "2024-02-04", SHIFT)
    assert clean["check"] == "success"
    assert clean["retrain_recommender"] == "skipped"
    record = json.loads((folder / "2024-02-04" / "drift.json").read_text())
    assert not record["drift"], record
    calibration = record["calibration"]  # ten days before the champion's data end
    assert calibration["calibrated"] and len(calibration["chunks"]) == 10
    assert {c["column"]: c["threshold"] for c in record["columns"]} == {
        column: band["threshold"]
        for column, band in calibration["bands"].items()
        if column != "volume"
    }  # the check ran with the calibrated thresholds
    timeline = [json.loads(line) for line in (folder / "timeline.jsonl").read_text().splitlines()]
    performance = timeline[-1]["performance"]
    assert performance["judged"] and not performance["dropped"], performance
    assert performance["metric"] == "ndcg@10"

    shifted = run(dag, settings, SHIFT, "2024-02-06")
    assert shifted["retrain_recommender"] == "success"
    assert shifted["retrain_pricing"] == "skipped"
    record = json.loads((folder / SHIFT / "drift.json").read_text())
    assert record["drift"] and "category" in record["drifted_columns"]
    retrains = [json.loads(line) for line in (folder / "retrains.jsonl").read_text().splitlines()]
    assert retrains[-1]["reason"].startswith("performance: ndcg@10"), retrains
    assert (folder / SHIFT / "report.html").stat().st_size > 10_000
    assert record["champion_version"] == "1"
    timeline = [json.loads(line) for line in (folder / "timeline.jsonl").read_text().splitlines()]
    assert timeline[-1]["performance"]["dropped"]
    predicted = timeline[-1]["prediction"]  # what the champion recommends, before and after
    assert {c["column"] for c in predicted["columns"]} == {
        "recommended_category",
        "recommended_popularity",
    }
    assert (folder / SHIFT / "predictions.html").stat().st_size > 10_000

    again = run(dag, settings, SHIFT, "2024-02-06")  # the same interval: cool-down
    assert again["check"] == "success" and again["retrain_recommender"] == "skipped"

    timeline = [json.loads(line) for line in (folder / "timeline.jsonl").read_text().splitlines()]
    assert [line["interval"]["start"][:10] for line in timeline] == ["2024-02-04", SHIFT]
    assert all(line["mlflow_run_id"] for line in timeline)  # the rerun replaced its own line


def test_the_retrain_event_says_what_to_train_up_to():
    from monitoring.retrain import retrain_event

    results = [
        {"model": "recommender", "retrain": False, "start": "a", "end": "b", "reason": "x"},
        {"model": "recommender", "retrain": True, "start": "2024-02-05", "end": "2024-02-06",
         "reason": "drift in category", "report": "r.html"},
        {"model": "pricing", "retrain": False, "start": "c", "end": "d", "reason": "no drift"},
    ]  # fmt: skip
    event = retrain_event(results, "recommender")
    assert event == {
        "model": "recommender",
        "end": "2024-02-06",
        "reason": "drift in category",
        "report": "r.html",
    }
    assert retrain_event(results, "pricing") is None


@pytest.mark.integration
def test_the_cli_checks_a_span_and_plots_its_timeline(shifted_shop, tmp_path):
    import shutil

    from typer.testing import CliRunner

    from aisle.cli import app

    data_dir = tmp_path / "data"
    shutil.copytree(shifted_shop.data_dir / "curated", data_dir / "curated")
    env = {  # a data folder of its own: no champion there
        "AISLE_INTERACTIONS_SOURCE": "simulator",
        "AISLE_DATA_DIR": str(data_dir),
        "AISLE_RECOMMENDER_VALID_DAYS": "7",
        "AISLE_RECOMMENDER_TEST_DAYS": "7",
    }
    runner = CliRunner()
    args = ["drift", "check", "recommender", "--start", "2024-02-03", "--end", "2024-02-07"]
    result = runner.invoke(app, args, env=env, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "2024-02-05" in result.output and "yes" in result.output  # the shift, detected
    result = runner.invoke(app, ["drift", "timeline", "recommender"], env=env)
    assert result.exit_code == 0, result.output
    folder = data_dir / "monitoring" / "recommender"
    assert (folder / "drift_timeline.png").read_bytes()[:4] == b"\x89PNG"
    page = (folder / "drift_timeline.html").read_text()
    assert page.count("<tr>") == 1 + 4  # the header and four days
    retrains = [json.loads(line) for line in (folder / "retrains.jsonl").read_text().splitlines()]
    # no champion: the first day asks for a first model; the 72 h cool-down holds the shift on
    # the 5th, the 6th (drifted) asks again
    assert [r["interval_start"][:10] for r in retrains] == ["2024-02-03", "2024-02-06"]
    assert retrains[0]["reason"].startswith("no champion yet: the first model")
    assert "category" in retrains[1]["reason"]


def test_no_timeline_yet_is_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    from aisle.cli import app

    result = CliRunner().invoke(
        app, ["drift", "timeline", "pricing", "--data-dir", str(tmp_path)], terminal_width=200
    )
    assert result.exit_code == 1 and "no drift checks of pricing yet" in result.output


def test_an_interval_without_a_reference_is_reported_not_failed(tmp_path):
    from core.settings import get_settings
    from monitoring.retrain import check_intervals_step

    settings = get_settings(data_dir=tmp_path / "data", interactions_source="simulator")
    interval = {"flow": "interactions", "start": "2024-01-01", "end": "2024-01-02"}
    (result,) = check_intervals_step([interval], settings)
    assert not result["drift"] and not result["retrain"]
    assert result["reason"].startswith("nothing to check: no curated simulator interactions")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["drift", "check", "nobody", "--start", "2024-01-01", "--end", "2024-01-02"],
            "unknown model",
        ),
        (
            ["drift", "check", "pricing", "--start", "2024-01-02", "--end", "2024-01-01"],
            "not after",
        ),
    ],
)
def test_drift_check_refuses_bad_arguments(args, message, tmp_path):
    from typer.testing import CliRunner

    from aisle.cli import app

    result = CliRunner().invoke(app, [*args, "--data-dir", str(tmp_path)], terminal_width=200)
    assert result.exit_code == 1 and message in result.output


def test_the_first_model_is_asked_for_once_the_history_covers_its_windows(tmp_path):
    """No champion: no drift needed, but not before test + 2 x valid days are curated."""
    from core.settings import get_settings
    from features.storage import partition_dir
    from monitoring.retrain import decide_retrain

    settings = get_settings(
        data_dir=tmp_path / "data",
        interactions_source="simulator",
        recommender_valid_days=7,
        recommender_test_days=7,
    )
    partition_dir(settings.curated_dir, "simulator", "interactions", "2024-01-01").mkdir(
        parents=True
    )

    def record(start: str, end: str, drift: bool = False) -> dict:
        columns = ["category"] if drift else []
        interval = {"start": start, "end": end}
        return {"interval": interval, "drift": drift, "drifted_columns": columns,
                "champion_version": None}  # fmt: skip

    early = decide_retrain("recommender", record("2024-01-10", "2024-01-11", drift=True), settings)
    assert not early[0] and "10 days of interactions curated, 21 needed" in early[1]
    first = decide_retrain("recommender", record("2024-01-21", "2024-01-22"), settings)
    assert first == (True, "no champion yet: the first model")
    again = decide_retrain("recommender", record("2024-01-22", "2024-01-23"), settings)
    assert again[0] is False and again[1].startswith("cool-down")
