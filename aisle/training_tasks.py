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
    """`gate`: training.<model>.gate on the registered version; a rejected version skips the
    task with its reasons (they are on the version's tags too) and the champion stays."""
    from airflow.sdk import task

    @task(task_id="gate")
    def gate(registered: dict) -> dict:
        import importlib

        from airflow.sdk.exceptions import AirflowSkipException

        gate_step = importlib.import_module(f"training.{model}.gate").gate_step
        decision = gate_step(registered["training_set"], registered["version"])
        if not decision["passed"]:
            raise AirflowSkipException("gate rejected: " + "; ".join(decision["reasons"]))
        return decision

    return gate
