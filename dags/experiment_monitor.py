"""
### Experiment monitor: attribute what each answer earned, and decide each online experiment

Runs every interval (`AISLE_EXPERIMENTS_SCHEDULE`, daily by default), or when triggered with
params.

1. **attribute**: the interval's answer log joined with the events that followed
   (`monitoring.attribution`): per recommendation its clicks, carts, purchases and revenue; per
   price quote the units, revenue and profit sold at it. The outcomes land in
   `data/outcomes/<recommendations|prices>/date=<day>/`, the figures per model version, colour
   and arm in the MLflow experiment `outcomes`.
2. **decide**: each running experiment (`aisle experiment start`, or `promote_model` in
   experiment mode) looked at once more: its units per arm, the effect on its metric with a
   sequential interval (spotify-confidence's group-sequential z-test with CUPED adjustment, so
   a look every interval keeps false positives at the configured rate), the sample-ratio check
   and its guardrail metrics, then the decision: promote, stop (harm, futility, sample-ratio
   mismatch, guardrail) or continue. The HTML report is the task's Report link and is logged
   to the MLflow experiment `experiments`.
3. **act**: a promote decision sends every unit to the challenger and moves the `champion`
   alias to it; a stop sends every unit back to the champion and stops the challenger. Every
   decision and why is in the audit log (the task's Audit entry link).

**Inputs**: the answer log and the stream's events of the interval; a running gateway
(`aisle stack up`) and `AISLE_ADMIN_TOKEN` (with no gateway up there is no experiment to
decide: the outcomes are still attributed).
**Rerun**: trigger with params `{"start": "2024-03-01T00:00:00+00:00", "end": "..."}`; the
interval's outcome files are replaced, and an experiment that ended is not decided again.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from core.settings import get_settings


@dag(
    dag_id="experiment_monitor",
    # a data interval per run (Airflow 3's plain cron schedule gives start == end)
    schedule=CronDataIntervalTimetable(get_settings().experiments_schedule, timezone="UTC"),
    start_date=pendulum.datetime(1990, 1, 1, tz="UTC"),
    end_date=get_settings().calendar_end,  # a replay's calendar stops with its timeline
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["aisle", "monitoring", "experiments"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=20)},
    params={
        "start": Param(None, type=["null", "string"], description="ISO time, UTC"),
        "end": Param(None, type=["null", "string"], description="ISO time, UTC, exclusive"),
    },
)
def experiment_monitor() -> None:
    @task
    def attribute(params=None, data_interval_start=None, data_interval_end=None) -> dict:
        from datetime import datetime

        from monitoring.outcomes import attribute_interval

        start = (params or {}).get("start") or data_interval_start
        end = (params or {}).get("end") or data_interval_end
        # plain datetimes: pandas does not compare its UTC with pendulum's
        start, end = (datetime.fromisoformat(str(t).replace(" ", "T")) for t in (start, end))
        return attribute_interval(get_settings(), start, end)

    @task
    def decide(attributed: dict) -> list[dict]:
        from aisle.experiments import decide_step

        return decide_step(get_settings())

    @task(retries=0)
    def act(decisions: list[dict], dag_run=None) -> list[dict]:
        from aisle.experiments import act_step

        return act_step(get_settings(), decisions, f"airflow:{dag_run.dag_id}/{dag_run.run_id}")

    act(decide(attribute()))


experiment_monitor()
