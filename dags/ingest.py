"""
### Ingest: land a data interval and turn it into curated, validated partitions

One DAG per flow:

* **`ingest_interactions`** (daily; `AISLE_INTERACTIONS_SCHEDULE`): interaction events and
  the item table, for the recommender.
* **`ingest_sales`** (weekly from Thursday, as Dominick's weeks run; `AISLE_SALES_SCHEDULE`):
  store sales, items and stores, for the pricing model.

**land** copies the interval's events from the configured source into the raw zone
(`data/raw/<dataset>/<table>/date=<interval start>/`), then **etl** validates them, quarantines
what fails (with its reason), removes duplicates and writes one curated parquet partition per
day. **attributes** does the same for the item (and store) snapshot the source provides.
The ETL task's return value (in XCom) is the run summary: rows in, curated, quarantined by
reason, duplicates; it is also written to `data/runs/`. When an ETL task succeeds it updates the
Asset `curated_<table>` with the flow and interval in the event's extra; the `features` DAG is
scheduled on it.

**Inputs**: the data interval, and the source settings `AISLE_INTERACTIONS_SOURCE` /
`AISLE_SALES_SOURCE` (a built-in replay: movielens, orange_juice, simulator; or the path of a
shop's CSV/parquet export). When the source provides no attribute
tables (a shop's export holds one table), `attributes` is skipped. An export with its own column
names is read through `AISLE_COLUMN_MAP__<TABLE>` (the mapping `aisle etl --map` gives).

For a replay of past data, `AISLE_CALENDAR_END` (set by `aisle demo`) ends the calendar with
the timeline: the scheduler then creates no run for today's interval, and backfills walk the
timeline.

**Rerun**: clear the run (or `aisle replay FLOW --start ... --end ...`); every output for an
interval is replaced atomically, so reruns are safe and give byte-identical partitions.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from aisle.assets import curated_asset
from core.schemas import FLOWS
from core.settings import get_settings

START = pendulum.datetime(1990, 1, 1, tz="UTC")


def _ingest_dag(flow: str, schedule: str, attribute_tables: tuple[str, ...]) -> None:
    @dag(
        dag_id=f"ingest_{flow}",
        # A data interval that spans the period (Airflow 3's plain cron schedules have none).
        schedule=CronDataIntervalTimetable(schedule, timezone="UTC"),
        start_date=START,
        catchup=False,
        end_date=_settings.calendar_end,  # a replay's calendar stops with its timeline
        max_active_runs=1,
        doc_md=__doc__,
        tags=["aisle", "ingest", flow],
        default_args={"retries": 2, "retry_delay": timedelta(seconds=20)},
    )
    def ingest() -> None:
        @task(task_id=f"land_{flow}")
        def land(data_interval_start=None, data_interval_end=None) -> dict:
            from features.ingest import land_step

            return land_step(flow, flow, data_interval_start, data_interval_end)

        @task(task_id=f"etl_{flow}", outlets=[curated_asset(flow)])
        def etl(
            landed: dict, data_interval_start=None, data_interval_end=None, outlet_events=None
        ) -> dict:
            from airflow.sdk.exceptions import AirflowFailException

            from features.ingest import etl_step
            from features.reading import RawFileError

            try:
                summary = etl_step(flow, flow, data_interval_start, data_interval_end)
            except RawFileError as unreadable:  # the same file fails the same way: no retry
                raise AirflowFailException(str(unreadable)) from None
            # The features DAG learns from the Asset event which interval to process.
            outlet_events[curated_asset(flow)].extra = {
                "flow": flow,
                "start": data_interval_start.isoformat(),
                "end": data_interval_end.isoformat(),
            }
            return summary

        @task(outlets=[curated_asset(t) for t in attribute_tables])
        def attributes(data_interval_start=None, data_interval_end=None) -> list[dict]:
            """Land and validate the attribute snapshots the source provides."""
            from airflow.sdk.exceptions import AirflowSkipException

            from features.ingest import ingest_attributes

            summaries = ingest_attributes(flow, data_interval_start, data_interval_end)
            if not summaries:  # no Asset event for tables that did not change
                raise AirflowSkipException(f"the {flow} source provides no attribute tables")
            return summaries

        etl(land())
        attributes()

    ingest()


_settings = get_settings()
for _flow, _tables in FLOWS.items():
    _ingest_dag(_flow, _settings.schedule_for(_flow), _tables[1:])
