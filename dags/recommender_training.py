"""
### Recommender training: a Feast training set, a torch model, MLflow run and registry

Runs every `AISLE_RECOMMENDER_SCHEDULE` (weekly), or when triggered with params. The data interval's
end is the cut: the last `AISLE_RECOMMENDER_TEST_DAYS` before it are held out as test, the
`AISLE_RECOMMENDER_VALID_DAYS` before those validate (protocol B, a temporal split).

1. **training_set**: every user's item history as Feast knew it at each cut
   (`recommender_history_v1`, point-in-time), with the items they touched next as targets;
   written to `data/training/recommender/<dataset>/<windows>/training_set.parquet`.
2. **train**: closed-form start, fine-tuning with early stopping on validation NDCG@10, test
   metrics beside popularity and EASE; one MLflow run (experiment `recommender`) with params,
   per-epoch metrics, the learning curve, the evaluation table and lineage tags; the checkpoint
   lands beside the training set.
3. **register**: the checkpoint logged as the run's model (pyfunc, with signature), registered as
   `recommender`, the new version aliased `challenger` (promotion to `champion` is the serving
   cluster's job).

**Rerun**: trigger with params, e.g. `{"end": "1998-04-23"}`; the training set is rewritten in
place, and each run registers a new version.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from aisle.settings import get_settings


@dag(
    dag_id="recommender_training",
    schedule=get_settings().recommender_schedule,
    start_date=pendulum.datetime(1990, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["aisle", "recommender", "training"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "end": Param(
            None,
            type=["null", "string"],
            description="YYYY-MM-DD, UTC: where the data ends (default: the data interval's end)",
        ),
        "epochs": Param(None, type=["null", "integer"], minimum=0, description="fine-tuning"),
        "spectral_rank": Param(None, type=["null", "integer"], minimum=1),
    },
)
def recommender_training() -> None:
    @task
    def training_set(data_interval_end=None, params=None) -> str:
        from training.recommender.pipeline import build_training_set_step

        return build_training_set_step((params or {}).get("end") or data_interval_end)

    @task
    def train(path: str, params=None) -> dict:
        from training.recommender.pipeline import train_step

        config = {k: v for k, v in (params or {}).items() if k in ("epochs", "spectral_rank")}
        return train_step(path, config)

    @task
    def register(trained: dict) -> dict:
        from training.recommender.pipeline import register_step

        return register_step(trained["run_id"], trained["checkpoint"])

    register(train(training_set()))


recommender_training()
