"""
### Drift monitor: check each new interval; retrain the model whose performance dropped

Runs whenever the `features` DAG has built and materialised newly curated intervals (scheduled
on the Asset `online_features`, whose events name the intervals), so a retrain it asks for
finds the interval's features in place; or when triggered with params.

1. **intervals**: the (flow, start, end) of the triggering Asset events, or of the params.
2. **check**: for each interval, its model's drift against the champion's training window
   (`monitoring.monitor`: Evidently, methods from `AISLE_DRIFT__*`, each column's threshold
   calibrated on the chunks before the champion's data end, drift confirmed by the drifted
   columns' share), and the champion's **realised performance** on the interval (NDCG@10 on
   the shoppers' next items; RMSE of log units at the prices charged) against the band its
   own test window gives (`monitoring.performance`, `AISLE_PERFORMANCE__*`). The HTML report
   and its JSON land in `data/monitoring/<model>/<interval start>/` and in the MLflow
   experiment `drift-<model>`; the task log names both. Then the retrain decision, with its
   reason: a drop below the band ("performance") retrains; so does a model with no champion
   yet, once the curated history covers its training windows; drift alone is reported
   (`AISLE_DRIFT__RETRAIN_ON_DRIFT=true` retrains on it); all outside the cool-down
   (`AISLE_DRIFT__COOLDOWN_HOURS`, on data time). `aisle drift timeline MODEL` draws it all.
3. **retrain_recommender** / **retrain_pricing**: emit the Asset `retrain_<model>` (extra: the
   interval end to train up to, the reason, the report), on which the training DAGs are
   scheduled beside their calendar; skipped when nothing asks.

**Inputs**: the curated partitions of the interval and of the reference window; the registry's
champion (its `data_interval_end` tag sets the reference).
**Rerun**: trigger with params `{"flow": "interactions", "start": "1998-03-01", "end":
"1998-03-02"}`; the report and the timeline line of an interval are replaced, and a rerun of an
interval that already triggered a retrain does not trigger another.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from aisle.assets import features_asset, retrain_asset


@dag(
    dag_id="drift_monitor",
    schedule=features_asset(),
    start_date=pendulum.datetime(1990, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["aisle", "monitoring", "drift"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=20)},
    params={
        "flow": Param(None, type=["null", "string"], enum=[None, "interactions", "sales"]),
        "start": Param(None, type=["null", "string"], description="YYYY-MM-DD, UTC"),
        "end": Param(None, type=["null", "string"], description="YYYY-MM-DD, UTC, exclusive"),
    },
)
def drift_monitor() -> None:
    @task
    def intervals(triggering_asset_events=None, params=None) -> list[dict]:
        from airflow.sdk.exceptions import AirflowSkipException

        from features.pipeline import intervals_to_process

        extras = [
            interval
            for events in (triggering_asset_events or {}).values()
            for event in events
            for interval in (event.extra or {}).get("intervals", [])
        ]
        todo = intervals_to_process(extras, params)
        if not todo:
            raise AirflowSkipException("no interval to check")
        return todo

    @task
    def check(todo: list[dict]) -> list[dict]:
        from monitoring.retrain import check_intervals_step

        return check_intervals_step(todo)

    def retrain(model: str):
        @task(task_id=f"retrain_{model}", outlets=[retrain_asset(model)])
        def emit(results: list[dict], outlet_events=None) -> dict:
            from airflow.sdk.exceptions import AirflowSkipException

            from monitoring.retrain import retrain_event

            event = retrain_event(results, model)
            if event is None:
                reasons = [r["reason"] for r in results if r["model"] == model]
                raise AirflowSkipException(f"{model}: {'; '.join(reasons) or 'not checked'}")
            outlet_events[retrain_asset(model)].extra = event
            return event

        return emit

    results = check(intervals())
    retrain("recommender")(results)
    retrain("pricing")(results)


drift_monitor()
