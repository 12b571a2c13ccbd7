"""DAG files must not shadow the project's packages: Airflow puts the dags folder on sys.path."""

from __future__ import annotations

import pytest

from aisle import airflow_env

PACKAGES = {"aisle", "features", "training", "serving", "monitoring"}


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
