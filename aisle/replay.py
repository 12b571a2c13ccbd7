"""Replay a source's timeline through an ingest DAG, one data interval per DAG run.

Each interval is a real Airflow DAG run (`dag.test`, in this process, recorded in the metadata
DB and visible in the UI), exactly as the scheduler's backfill would make it, without having to
start a scheduler first.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import pyarrow.compute as pc
import pyarrow.dataset as ds
from croniter import croniter

from core.settings import Settings
from features.ingest import flow_tables, source_of
from features.landing import prepared_path
from features.storage import Interval

from . import airflow_env


@dataclass(frozen=True)
class ReplayRun:
    interval: Interval
    state: str
    summaries: list[dict]


def timeline(settings: Settings, flow: str) -> tuple[datetime, datetime]:
    """First and last event time of the flow's prepared source."""
    source = source_of(settings, flow, flow)
    if not source.is_replay:
        raise ValueError(
            "a shop's file has no timeline to replay; use `aisle etl` with an interval"
        )
    path = prepared_path(settings, source.dataset, flow)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; run `aisle data fetch` first")
    column = flow_time_column(flow)
    values = ds.dataset(path).to_table(columns=[column])[column]
    bounds = pc.min_max(values).as_py()
    return _utc(bounds["min"]), _utc(bounds["max"])


def source_rows(settings: Settings, flow: str, start: datetime, end: datetime) -> int:
    """Rows of the flow's prepared source whose event time is in [start, end): what a replay
    of that span must account for, row by row."""
    source = source_of(settings, flow, flow)
    column = flow_time_column(flow)
    table = ds.dataset(prepared_path(settings, source.dataset, flow))
    times = table.to_table(columns=[column])[column]
    zone = times.type.tz
    bounds = [_utc(t) if zone else _utc(t).replace(tzinfo=None) for t in (start, end)]
    inside = pc.and_(pc.greater_equal(times, bounds[0]), pc.less(times, bounds[1]))
    return int(pc.sum(inside).as_py() or 0)


def flow_time_column(flow: str) -> str:
    from core.schemas import table_spec

    column = table_spec(flow).time_column
    assert column is not None
    return column


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def intervals(schedule: str, first: datetime, last: datetime) -> list[Interval]:
    """The schedule's data intervals that cover [first, last]."""
    start = croniter(schedule, first + timedelta(microseconds=1)).get_prev(datetime)
    found = []
    while start <= last:
        end = croniter(schedule, start).get_next(datetime)
        found.append(Interval(start, end))
        start = end
    return found


def plan(
    settings: Settings,
    flow: str,
    start: datetime | None = None,
    end: datetime | None = None,
    schedule: str | None = None,
) -> list[Interval]:
    """The data intervals a replay of `flow` runs, clipped to [start, end)."""
    first, last = timeline(settings, flow)
    first = max(first, _utc(start)) if start else first
    last = min(last, _utc(end) - timedelta(microseconds=1)) if end else last
    return intervals(schedule or settings.schedule_for(flow), first, last)


@contextmanager
def output_to(log_path: Path) -> Iterator[TextIO]:
    """Send everything written to stdout/stderr (Airflow's logs) to `log_path`.

    Yields a stream to the real terminal, for a progress bar that stays readable.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(1), "w", buffering=1)
    with log_path.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield terminal
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            terminal.close()


def replay(
    settings: Settings,
    flow: str,
    start: datetime | None = None,
    end: datetime | None = None,
    on_run: Callable[[ReplayRun], None] | None = None,
    features: bool = True,
) -> list[ReplayRun]:
    """Run the `ingest_<flow>` DAG once per interval of the flow's schedule in [start, end).

    With `features`, each ingest run is followed by a run of the `features` DAG for the same
    interval, as the scheduler would trigger it from the ingest's Asset event.
    """
    airflow_env.migrate_db(settings)
    with airflow_env.configured(settings):  # for the DAGs run here and their tasks
        return _replay_runs(settings, flow, start, end, on_run, features)


def _replay_runs(
    settings: Settings,
    flow: str,
    start: datetime | None,
    end: datetime | None,
    on_run: Callable[[ReplayRun], None] | None,
    features: bool,
) -> list[ReplayRun]:
    dag = load_dag(f"ingest_{flow}")
    features_dag = load_dag("features") if features else None
    # The DAG's own timetable decides the intervals: a run is only ever one of its intervals.
    planned = plan(settings, flow, start, end, schedule=dag.timetable.summary)
    runs = []
    for interval in planned:
        # dag.test infers the data interval that ends at the logical date it is given.
        dag_run = dag.test(logical_date=interval.end)
        state = str(dag_run.state)
        if state == "success" and features_dag is not None:
            conf = {"flow": flow, "start": interval.key, "end": interval.as_of}
            features_run = features_dag.test(run_conf=conf)
            if str(features_run.state) != "success":
                raise RuntimeError(f"features failed for {flow} {interval}; see the task logs")
        run = ReplayRun(interval, state, _summaries(settings, flow, interval))
        runs.append(run)
        if on_run:
            on_run(run)
        if run.state != "success":
            raise RuntimeError(f"ingest_{flow} failed for {interval}; see the Airflow task logs")
    return runs


def load_dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(airflow_env.PROJECT_DIR / "dags"))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    return bag.dags[dag_id]


def _summaries(settings: Settings, flow: str, interval: Interval) -> list[dict]:
    from features.etl import summary_path

    found = []
    for table in flow_tables(flow):
        try:
            dataset = source_of(settings, flow, table).dataset
        except LookupError:
            continue
        path = summary_path(settings, dataset, table, interval)
        if path.exists():
            found.append(json.loads(path.read_text()))
    return found
