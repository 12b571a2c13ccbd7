"""
### Pricing training: a Feast training set, a monotone demand model, MLflow run and registry

Runs every `AISLE_PRICING_SCHEDULE` (weekly), or when triggered with params. The data interval's
end is the cut: the last `AISLE_PRICING_TEST_WEEKS` before it are held out as test, the
`AISLE_PRICING_VALID_WEEKS` before those tune the model (rolling folds).

1. **training_set**: every store x item x week of sales with its `pricing_v1` features joined
   point-in-time (the week's shelf, the demand of the weeks before); written to
   `data/training/pricing/<dataset>/<windows>/training_set.parquet`.
2. **train**: the penalty tuned on the valid weeks, a bootstrap ensemble fit on fit + valid
   weeks, test RMSE beside the references (a)-(e), elasticities per item x store; one MLflow run
   (experiment `pricing`) with params, loss and tuning curves, the evaluation table, a
   price-response plot and lineage tags; the checkpoint lands beside the training set.
3. **register**: the checkpoint logged as the run's model (pyfunc, with signature), registered
   as `pricing`, the new version aliased `challenger` (promotion to `champion` is the serving
   cluster's job).

**Rerun**: trigger with params, e.g. `{"end": "1992-10-08", "members": 3}`; the training set is
rewritten in place, and each run registers a new version.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from aisle.settings import get_settings

CONFIG_PARAMS = ("members", "max_iter")


@dag(
    dag_id="pricing_training",
    schedule=get_settings().pricing_schedule,
    start_date=pendulum.datetime(1990, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["aisle", "pricing", "training"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "end": Param(
            None,
            type=["null", "string"],
            description="YYYY-MM-DD, UTC: where the data ends (default: the data interval's end)",
        ),
        "members": Param(None, type=["null", "integer"], minimum=1, description="ensemble size"),
        "max_iter": Param(None, type=["null", "integer"], minimum=1, description="L-BFGS steps"),
    },
)
def pricing_training() -> None:
    @task
    def training_set(data_interval_end=None, params=None) -> str:
        from training.pricing.pipeline import build_training_set_step

        return build_training_set_step((params or {}).get("end") or data_interval_end)

    @task
    def train(path: str, params=None) -> dict:
        from training.pricing.pipeline import train_step

        config = {k: v for k, v in (params or {}).items() if k in CONFIG_PARAMS}
        return train_step(path, config)

    @task
    def register(trained: dict) -> dict:
        from training.pricing.pipeline import register_step

        return register_step(trained["run_id"], trained["checkpoint"])

    register(train(training_set()))


pricing_training()
