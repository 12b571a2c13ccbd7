"""The training DAG every model shares: its stages (training/stages.py) as Airflow tasks.

    training_set -> validate -> train -> register -> gate

`training_dag(model, ...)` builds it from the model's `STAGES`; a DAG file only wires it: the
schedule, the docs and the tags. The validate and gate tasks decide alike for every model:
a rejected training set fails the run without retries, a rejected version is skipped with its
reasons unless the run's `force_promote` param overrides it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from core.settings import get_settings
from training.stages import ModelStages, model_stages

from .assets import challenger_asset, retrain_asset

FORCE_PROMOTE_PARAM_DOC = (
    "promote this version even if the gate rejects it (recorded on the version as "
    "aisle.gate.forced_by); off by default"
)


def training_dag(model: str, schedule: str, doc_md: str | None) -> Any:
    """The training DAG `<model>_training`: on `schedule` (cron), or when the drift monitor asks
    for a retrain (the Asset `retrain_<model>`), or triggered with params."""
    import pendulum
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

    stages = model_stages(model)

    @dag(
        dag_id=f"{model}_training",
        # its calendar, or drift confirmed by the drift_monitor DAG
        schedule=AssetOrTimeSchedule(
            timetable=CronTriggerTimetable(schedule, timezone="UTC"),
            assets=retrain_asset(model),
        ),
        start_date=pendulum.datetime(1990, 1, 1, tz="UTC"),
        catchup=False,
        end_date=get_settings().calendar_end,  # a replay's calendar stops with it
        max_active_runs=1,
        doc_md=doc_md,
        tags=["aisle", model, "training"],
        default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
        params=training_params(stages),
    )
    def training() -> None:
        @task
        def training_set(data_interval_end=None, params=None, triggering_asset_events=None):
            from training.tracking import training_end

            end = training_end(params, triggering_asset_events, data_interval_end)
            return stages.build_training_set(end)

        @task
        def train(path: str, params=None) -> dict:
            return stages.train(path, stages.config_from(params))

        @task
        def register(trained: dict) -> dict:
            return stages.register(trained)

        gate = gate_task(stages)
        gate(register(train(validate_task(model)(training_set()))))

    return training()


def validate_task(model: str) -> Any:
    """`validate`: monitoring.data_checks on the training set; a rejected set fails the run
    without retries (the same data fails the same way), every failed check in the log."""
    from airflow.sdk import task

    @task(task_id="validate")
    def validate(path: str) -> str:
        from airflow.sdk.exceptions import AirflowFailException

        from monitoring.data_checks import TrainingDataRejected, validate_step

        try:
            validate_step(model, path)
        except TrainingDataRejected as rejected:
            raise AirflowFailException(str(rejected)) from None
        return path

    return validate


def gate_task(stages: ModelStages) -> Any:
    """`gate`: the model's gate on the registered version. Passed: the version becomes the
    challenger and the Asset `challenger_<model>` tells the promote_model DAG. Rejected: the task
    is skipped with its reasons (they are on the version's tags too) and the champion stays,
    unless the run's `force_promote` param overrides it (recorded on the version)."""
    from airflow.sdk import task

    model = stages.name

    @task(task_id="gate", outlets=[challenger_asset(model)])
    def gate(registered: dict, params=None, dag_run=None, outlet_events=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from training.gate import force_through

        decision = stages.gate(registered)
        if not decision["passed"]:
            if not (params or {}).get("force_promote"):
                raise AirflowSkipException("gate rejected: " + "; ".join(decision["reasons"]))
            decision = force_through(decision, f"airflow:{dag_run.dag_id}/{dag_run.run_id}")
        outlet_events[challenger_asset(model)].extra = {
            "model": model,
            "version": str(decision["version"]),
            "verdict": decision["verdict"],
            "forced": "forced_by" in decision,
        }
        return decision

    return gate


def training_params(stages: ModelStages) -> dict[str, Any]:
    """The trigger form of a training DAG: where the data ends, the model's own training
    options (None keeps the default), and the force-promote override (off)."""
    from airflow.sdk import Param

    options = {
        p.name: Param(None, type=["null", "integer"], minimum=p.minimum, description=p.description)
        for p in stages.params
    }
    return {
        "end": Param(
            None,
            type=["null", "string"],
            format="date",
            description="YYYY-MM-DD, UTC: where the data ends (default: the data interval's "
            "end, or the end the drift monitor named)",
        ),
        **options,
        "force_promote": Param(False, type="boolean", description=FORCE_PROMOTE_PARAM_DOC),
    }
