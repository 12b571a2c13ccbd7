"""
### Features: turn newly curated data into Feast features, offline and online

Runs whenever an ingest DAG has curated a data interval (it is scheduled on the Assets
`curated_interactions` and `curated_sales`; each Asset event carries its flow and interval), and
on its own every `AISLE_FEATURES_SWEEP_SCHEDULE` (hourly) to pick up anything pending.
For every interval it received:

1. **intervals**: which (flow, start, end) to process: those of the triggering Asset events (or,
   for a manual run, of the params), and any curated interval whose features are missing or
   older than its data (Airflow may drop events that arrive while a run is going,
   apache/airflow#56050; the ledger in `data/features/<dataset>/_processed/` catches them).
2. **build**: the daily feature tables of those days (`data/features/<dataset>/<view>/`):
   user activity and item popularity for `interactions`; item price, demand history and store
   attributes for `sales`. Each table is a summary known at its `event_timestamp`, which is what
   keeps training sets point-in-time correct. With `AISLE_SPARK__SUBMIT=true` (production on a
   cluster) this task submits `features/engines/submit.py` to Spark (connection
   `spark_default`) instead of building in the task's process.
3. **apply**: `feast apply`, only when the definitions changed (a new store attribute column, a
   new view); the fingerprint lives in the registry.
4. **materialize**: `materialize(start, end)` of the flow's views into the online store
   (SQLite locally, Redis in production), which serving reads. Then the Asset
   `online_features` (extra: the intervals) starts the `drift_monitor` DAG.

**Inputs**: the curated partitions of each interval (`data/curated/<dataset>/<table>/`), the
Feast definitions in `features/feature_repo/`, and for a manual run the params `flow`, `start`,
`end`.

**Rerun**: clear the run, or trigger with params `{"flow": "sales", "start": "1990-06-14",
"end": "1990-06-21"}`; every step is idempotent (same tables, same online values).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from aisle.assets import curated_asset, features_asset
from aisle.features_tasks import build_task
from core.settings import get_settings

# (This file is not called features.py: Airflow puts the dags folder on sys.path, and a module
# named `features` there would shadow the `features` package the tasks import.)


@dag(
    dag_id="features",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(get_settings().features_sweep_schedule, timezone="UTC"),
        assets=(curated_asset("interactions") | curated_asset("sales")),
    ),
    start_date=pendulum.datetime(1990, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["aisle", "features"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=20)},
    params={
        "flow": Param(None, type=["null", "string"], enum=[None, "interactions", "sales"]),
        "start": Param(None, type=["null", "string"], description="YYYY-MM-DD, UTC"),
        "end": Param(None, type=["null", "string"], description="YYYY-MM-DD, UTC, exclusive"),
    },
)
def features_dag() -> None:
    @task
    def intervals(triggering_asset_events=None, params=None) -> list[dict]:
        from airflow.sdk.exceptions import AirflowSkipException

        from features.pipeline import intervals_to_process, pending_intervals

        extras = [e.extra for events in (triggering_asset_events or {}).values() for e in events]
        todo = intervals_to_process(extras, params, pending_intervals())
        if not todo:  # a sweep that found everything up to date
            raise AirflowSkipException("every curated interval already has its features")
        return todo

    @task
    def apply() -> dict:
        from features.pipeline import apply_step

        return apply_step()

    @task(outlets=[features_asset()])
    def materialize(todo: list[dict], outlet_events=None) -> list[dict]:
        from features.pipeline import materialize_step

        done = [materialize_step(i["flow"], i["start"], i["end"]) for i in todo]
        # the drift monitor learns from the event which intervals now have their features
        outlet_events[features_asset()].extra = {"intervals": todo}
        return done

    todo = intervals()
    build_task(todo) >> apply() >> materialize(todo)


features_dag()
