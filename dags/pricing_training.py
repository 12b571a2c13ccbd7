"""
### Pricing training: a Feast training set, a monotone demand model, MLflow run and registry

Runs every `AISLE_PRICING_SCHEDULE` (weekly), when the `drift_monitor` DAG confirms drift (the
Asset `retrain_pricing`, whose event names the interval end to train up to), or when triggered
with params. The data interval's end is the cut: the last `AISLE_PRICING_TEST_WEEKS` before it
are held out as test, the `AISLE_PRICING_VALID_WEEKS` before those tune the model (rolling
folds).

1. **training_set**: every store x item x week of sales with its `pricing_v1` features joined
   point-in-time (the week's shelf, the demand of the weeks before); written to
   `data/training/pricing/<dataset>/<windows>/training_set.parquet`.
2. **validate**: schema, row count against the last accepted training set, null rates, ranges
   (units >= 0, prices > 0, flags, shares), new items and stores (Evidently tests,
   `monitoring.data_checks`); a failing set stops the run without retries.
3. **train**: the penalty tuned on the valid weeks, a bootstrap ensemble fit on fit + valid
   weeks, test RMSE beside the references (a)-(e), elasticities per item x store; one MLflow run
   (experiment `pricing`) with params, loss and tuning curves, the evaluation table, a
   price-response plot and lineage tags; the checkpoint lands beside the training set.
4. **register**: the checkpoint logged as the run's model (pyfunc, with signature), registered
   as a new version of `pricing`.
5. **gate**: the new version and the champion on the same test weeks (`training.gate`): RMSE
   must beat the champion's by `AISLE_GATE__PRICING_MARGIN` and last week's units', MAE stays
   within tolerance, demand falls with price, guard-railed quotes hold. Passed: alias
   `challenger`, and the Asset `challenger_pricing` starts the `promote_model` DAG; rejected:
   the task is skipped with the reasons (recorded in the version's tags) and the champion
   stays, unless the param `force_promote` (off by default) overrides it.

**Inputs**: the curated sales and the `pricing_v1` features up to the cut (the params `end`,
`members`, `max_iter`, `force_promote`, or the retrain event's `end`), and the registry's
champion for the gate.

**Rerun**: trigger with params, e.g. `{"end": "1992-10-08", "members": 3}`; the training set is
rewritten in place, and each run registers a new version.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from aisle.assets import retrain_asset
from aisle.training_tasks import gate_task, training_params, validate_task
from core.settings import get_settings

CONFIG_PARAMS = ("members", "max_iter")


@dag(
    dag_id="pricing_training",
    # its calendar, or drift confirmed by the drift_monitor DAG
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(get_settings().pricing_schedule, timezone="UTC"),
        assets=retrain_asset("pricing"),
    ),
    start_date=pendulum.datetime(1990, 1, 1, tz="UTC"),
    catchup=False,
    end_date=get_settings().calendar_end,  # a replay's calendar stops with it
    max_active_runs=1,
    doc_md=__doc__,
    tags=["aisle", "pricing", "training"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params=training_params(
        members=Param(None, type=["null", "integer"], minimum=1, description="ensemble size"),
        max_iter=Param(None, type=["null", "integer"], minimum=1, description="L-BFGS steps"),
    ),
)
def pricing_training() -> None:
    @task
    def training_set(data_interval_end=None, params=None, triggering_asset_events=None) -> str:
        from training.pricing.pipeline import build_training_set_step
        from training.tracking import training_end

        end = training_end(params, triggering_asset_events, data_interval_end)
        return build_training_set_step(end)

    @task
    def train(path: str, params=None) -> dict:
        from training.pricing.pipeline import train_step

        config = {k: v for k, v in (params or {}).items() if k in CONFIG_PARAMS}
        return train_step(path, config)

    @task
    def register(trained: dict) -> dict:
        from training.pricing.pipeline import register_step

        return register_step(trained["run_id"], trained["checkpoint"])

    validate, gate = validate_task("pricing"), gate_task("pricing")
    gate(register(train(validate(training_set()))))


pricing_training()
