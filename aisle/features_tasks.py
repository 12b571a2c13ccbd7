"""The features DAG's `build` task, in the task's own process or as a Spark application.

`AISLE_SPARK__SUBMIT=true` (the production profile on a cluster): Airflow's Spark provider
submits `features/engines/submit.py` (SparkSubmitOperator, connection `spark_default`, which
names the master) with the settings' Spark configuration and the run's intervals, so the
driver runs beside the cluster under spark-submit's control, not inside a Celery worker's task.
Otherwise the task calls the same `build_intervals` in its own process, on whichever engine
`AISLE_ENGINE` names. The DAG file only wires the task; the choice is made here.
"""

from __future__ import annotations

from typing import Any

from core.settings import Settings, get_settings

SPARK_CONNECTION = "spark_default"
# The intervals task's output, rendered into the application's arguments when the task runs.
INTERVALS_TEMPLATE = "{{ ti.xcom_pull(task_ids='intervals') | tojson }}"


def build_task(todo: Any, settings: Settings | None = None) -> Any:
    """`build` downstream of `todo` (the intervals task's XComArg)."""
    settings = settings or get_settings()
    if settings.spark.submit:
        return spark_build_task(todo, settings)

    from airflow.sdk import task

    @task(task_id="build")
    def build(todo: list[dict]) -> list[dict]:
        from features.engines.submit import build_intervals

        return build_intervals(todo)

    return build(todo)


def spark_build_task(todo: Any, settings: Settings) -> Any:
    """`build` as a SparkSubmitOperator running the submit entry point on the intervals."""
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    from features.engines import submit
    from features.engines.spark import spark_conf

    operator = SparkSubmitOperator(
        task_id="build",
        conn_id=SPARK_CONNECTION,
        application=submit.__file__,
        conf=spark_conf(settings),
        application_args=["build", "--intervals", INTERVALS_TEMPLATE],
        name="aisle-features-build",
    )
    todo >> operator
    return operator
