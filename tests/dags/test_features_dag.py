"""The features DAG: scheduled on the ingest Assets, wired build → apply → materialize, its build
task in-process or submitted to Spark (AISLE_SPARK__SUBMIT), and a real run after a real ingest
run, with the interval carried by the Asset event."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from aisle import airflow_env
from aisle.features_tasks import SPARK_CONNECTION
from aisle.replay import load_dag
from core.settings import get_settings
from features import online
from features.engines import submit
from features.engines.spark import spark_conf
from features.pipeline import intervals_to_process
from features.storage import Interval


@pytest.fixture(scope="module")
def dag():
    return load_dag("features")


def test_scheduled_on_the_curated_assets_and_a_sweep(dag):
    assert dag.timetable.timetable.expression == "0 * * * *"  # @hourly
    assert {a.name for a in dag.timetable.asset_condition.objects} == {
        "curated_interactions",
        "curated_sales",
    }
    assert dag.doc_md and "Rerun" in dag.doc_md
    assert dag.default_args["retries"] == 2


def test_tasks_run_build_then_apply_then_materialize(dag):
    assert dag.get_task("build").upstream_task_ids == {"intervals"}
    assert dag.get_task("apply").upstream_task_ids == {"build"}
    assert dag.get_task("materialize").upstream_task_ids == {"apply", "intervals"}
    assert [a.name for a in dag.get_task("materialize").outlets] == ["online_features"]


def test_build_runs_in_the_task_by_default_through_the_entry_points_function(dag, monkeypatch):
    build = dag.get_task("build")
    assert build.task_type != "SparkSubmitOperator"
    todo = [{"flow": "sales", "start": "1990-06-14", "end": "1990-06-21"}]
    called = []
    monkeypatch.setattr(submit, "build_intervals", lambda t: called.append(t) or ["built"])
    assert build.python_callable(todo) == ["built"]
    assert called == [todo]  # the function the Spark application runs, with the same intervals


def test_with_submit_on_build_is_a_spark_application_of_the_runs_intervals(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    monkeypatch.setenv("AISLE_ENGINE", "spark")
    monkeypatch.setenv("AISLE_SPARK__SUBMIT", "true")
    monkeypatch.setenv("AISLE_SPARK__MASTER", "spark://spark-master:7077")
    monkeypatch.setenv("AISLE_SPARK__CONF", '{"spark.executor.memory": "4g"}')
    dag_file = airflow_env.PROJECT_DIR / "dags" / "materialize_features.py"
    bag = DagBag(dag_folder=str(dag_file))
    assert not bag.import_errors
    dag = bag.dags["features"]

    build = dag.get_task("build")
    assert isinstance(build, SparkSubmitOperator)
    assert build.upstream_task_ids == {"intervals"}
    assert dag.get_task("apply").upstream_task_ids == {"build"}
    assert build._conn_id == SPARK_CONNECTION
    assert build.application == submit.__file__
    conf = build.conf
    assert conf == spark_conf(get_settings())
    assert conf["spark.master"] == "spark://spark-master:7077"
    assert conf["spark.executor.memory"] == "4g"

    # The arguments, rendered as the task renders them, are what the entry point parses.
    todo = [{"flow": "sales", "start": "1990-06-14", "end": "1990-06-21"}]

    class TaskInstance:
        def xcom_pull(self, task_ids):
            assert task_ids == "intervals"
            return todo

    env = dag.get_template_env()
    args = [env.from_string(a).render(ti=TaskInstance()) for a in build.application_args]
    parsed = submit.parse_args(args)
    assert parsed.command == "build"
    assert json.loads(parsed.intervals) == todo


def test_intervals_come_from_events_and_params_once_each_in_time_order():
    week = {
        "flow": "sales",
        "start": "1990-06-21T00:00:00+00:00",
        "end": "1990-06-28T00:00:00+00:00",
    }
    earlier = {**week, "start": "1990-06-14T00:00:00+00:00", "end": "1990-06-21T00:00:00+00:00"}
    params = {"flow": "sales", "start": "1990-06-14", "end": "1990-06-21"}  # = earlier
    found = intervals_to_process([week, earlier, week, {}], params=params)
    assert found == [earlier, week]


@pytest.mark.parametrize(
    ("extras", "params", "message"),
    [
        ([], {"flow": "returns", "start": "2024-01-01", "end": "2024-01-02"}, "unknown flow"),
        ([], {"flow": "sales", "start": "2024-01-02", "end": "2024-01-01"}, "empty data interval"),
        ([], {"flow": "sales"}, "needs flow, start and end"),
    ],
)
def test_bad_run_requests_are_clear_errors(extras, params, message):
    with pytest.raises(ValueError, match=message):
        intervals_to_process(extras, params)


@pytest.mark.integration
@pytest.mark.slow
def test_an_ingest_run_then_a_features_run_fill_the_online_store(prepared_copy, dag):
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    airflow_env.migrate_db(prepared_copy)
    with airflow_env.configured(prepared_copy):  # the settings of the DAGs and their tasks
        week = Interval.parse("1990-06-14", "1990-06-21")
        ingest = load_dag("ingest_sales").test(logical_date=week.end)
        assert str(ingest.state) == "success"
        with create_session() as session:
            event = (
                session.query(AssetEvent)
                .filter(AssetEvent.source_run_id == ingest.run_id)
                .filter(AssetEvent.source_task_id == "etl_sales")
                .one()
            )
            extra = dict(event.extra)
        expected = {"flow": "sales", "start": week.start.isoformat(), "end": week.end.isoformat()}
        assert extra == expected

        # What the scheduler does with that event, run here in-process with the same interval.
        run = dag.test(run_conf={"flow": "sales", "start": "1990-06-14", "end": "1990-06-21"})
    assert str(run.state) == "success"
    found = online.online_features(
        prepared_copy, "item_price_fv", [{"item_id": "1", "store_id": "2"}]
    )
    assert found.known == [True]
    assert found.as_of == [datetime(1990, 6, 14, tzinfo=UTC)]
