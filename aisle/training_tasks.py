"""The tasks both training DAGs share around their model's own stages: validate the training set
before training, gate the registered version after. One place, so both DAGs decide alike."""

from __future__ import annotations

from typing import Any


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


def gate_task(model: str) -> Any:
    """`gate`: training.<model>.gate on the registered version. Passed: the version becomes the
    challenger and the Asset `challenger_<model>` tells the promote_model DAG. Rejected: the task
    is skipped with its reasons (they are on the version's tags too) and the champion stays,
    unless the run's `force_promote` param overrides it (recorded on the version)."""
    from airflow.sdk import task

    from aisle.assets import challenger_asset

    @task(task_id="gate", outlets=[challenger_asset(model)])
    def gate(registered: dict, params=None, dag_run=None, outlet_events=None) -> dict:
        import importlib

        from airflow.sdk.exceptions import AirflowSkipException

        from training.gate import force_through

        gate_step = importlib.import_module(f"training.{model}.gate").gate_step
        decision = gate_step(registered["training_set"], registered["version"])
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


FORCE_PROMOTE_PARAM_DOC = (
    "promote this version even if the gate rejects it (recorded on the version as "
    "aisle.gate.forced_by); off by default"
)


def training_params(**model_params: Any) -> dict[str, Any]:
    """The trigger form of a training DAG: where the data ends, the model's own knobs, and the
    force-promote override (off)."""
    from airflow.sdk import Param

    return {
        "end": Param(
            None,
            type=["null", "string"],
            format="date",
            description="YYYY-MM-DD, UTC: where the data ends (default: the data interval's "
            "end, or the end the drift monitor named)",
        ),
        **model_params,
        "force_promote": Param(False, type="boolean", description=FORCE_PROMOTE_PARAM_DOC),
    }
