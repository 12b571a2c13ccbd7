"""The outcomes zone: what each answer in the log earned, attributed once its windows have passed
(monitoring.attribution), the input of every online experiment's analysis.

    outcomes/recommendations/date=<day>/part.parquet   one row per recommendation answer
    outcomes/prices/date=<day>/part.parquet            one row per price quote

A partition holds the answers given on its UTC day. `attribute_interval(settings, start, end)` is
the step the DAG task, the CLI and the tests call: it reads the answers of [start, end) (whole
days) and the event stream's raw events from start to end + the purchase window, writes each day's
partitions atomically (a rerun replaces them; a day that lost its answers loses its partition) and
logs the figures per model version, colour and arm to the MLflow experiment "outcomes", one run
per interval. Run an interval once its purchase window has passed: a sale that arrives later is
credited only when the interval is attributed again.

Answers after the interval are read too (up to end + the window), so last touch sees every answer
an event could go to: an event after `end` belongs to the next interval's answer when that one
showed the item later, exactly as when the two intervals are attributed together.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.clock import When, as_utc
from core.files import write_parquet_durable
from core.settings import Settings

from .attribution import (
    PRICE_PATHS,
    RECOMMEND_PATHS,
    attribute_prices,
    attribute_recommendations,
    summarise,
    summarise_prices,
)

log = logging.getLogger(__name__)

PART = "part.parquet"
FOLDERS = {"recommender": "recommendations", "pricing": "prices"}
_META = [
    ("request_id", pa.string()),
    ("at", pa.timestamp("us", tz="UTC")),
    ("model", pa.string()),
    ("version", pa.string()),
    ("colour", pa.string()),
    ("experiment", pa.string()),
    ("arm", pa.string()),
]
SCHEMAS = {
    "recommender": pa.schema(
        [
            *_META,
            ("user_id", pa.string()),
            ("shown", pa.int64()),
            ("clicked", pa.bool_()),
            ("carted", pa.bool_()),
            ("purchased", pa.bool_()),
            ("clicks", pa.int64()),
            ("carts", pa.int64()),
            ("purchases", pa.int64()),
            ("revenue", pa.float64()),
        ]
    ),
    "pricing": pa.schema(
        [
            *_META,
            ("item_id", pa.string()),
            ("store_id", pa.string()),
            ("price", pa.float64()),
            ("cost", pa.float64()),
            ("units", pa.int64()),
            ("revenue", pa.float64()),
            ("profit", pa.float64()),
        ]
    ),
}


def outcome_dir(settings: Settings, model: str, day: str) -> Path:
    return settings.outcomes_dir / _folder(model) / f"date={day}"


def attribute_interval(settings: Settings, start: When, end: When) -> dict[str, Any]:
    """Attribute the answers of [start, end) and write their outcomes (module docstring).
    Returns the counts: answers read, outcomes written per model, answers that are neither a
    recommendation with items nor a quote with a price (skipped), events read, the zone's path,
    the files written and the MLflow run id."""
    from features.storage import Interval

    interval = Interval(as_utc(start), as_utc(end))  # whole UTC days: each run owns its days
    policy = settings.experiments
    clicks = timedelta(minutes=policy.click_window_minutes)
    purchases = timedelta(hours=policy.purchase_window_hours)
    horizon = interval.end + max(clicks, purchases)
    answers = _read_answers(settings, interval.start, horizon)
    events = read_stream_events(settings, interval.start, horizon)
    attributed = {
        "recommender": attribute_recommendations(answers, events, clicks, purchases),
        "pricing": attribute_prices(answers, events, purchases),
    }
    # answers after the interval were read for last touch only: they are the next run's
    until = pd.Timestamp(interval.end)
    found = {model: frame[frame["at"] < until] for model, frame in attributed.items()}
    written: list[str] = []
    for model, outcomes in found.items():
        written += _write_days(settings, model, outcomes, interval.days())
    counts = {model: len(outcomes) for model, outcomes in found.items()}
    answered = int((answers["at"] < until).sum())
    skipped = answered - sum(counts.values())
    summaries = {
        "recommender": summarise(found["recommender"]),
        "pricing": summarise_prices(found["pricing"]),
    }
    run_id = _log_to_mlflow(settings, interval, summaries, counts)
    result = {
        "interval": {"start": interval.start.isoformat(), "end": interval.end.isoformat()},
        "answers": answered,
        "outcomes": counts,
        "skipped": skipped,
        "events": len(events),
        "path": str(settings.outcomes_dir),
        "files": written,
        "mlflow_run_id": run_id,
    }
    if skipped:
        log.warning(
            "%d answer(s) of %s are neither a recommendation with items nor a quote with a price "
            "(paths %s): no outcome",
            skipped, interval, ", ".join(RECOMMEND_PATHS + PRICE_PATHS),
        )  # fmt: skip
    log.info(
        "outcomes of %s: %d answers, %s; MLflow run %s",
        interval, result["answers"], counts, run_id,
    )  # fmt: skip
    return result


def read_outcomes(
    settings: Settings, model: str, start: When | None = None, end: When | None = None
) -> pd.DataFrame:
    """The model's outcomes of the answers given in [start, end) (all of them by default), in
    time order, with the zone's columns even when there are none."""
    schema = SCHEMAS[_model(model)]
    root = settings.outcomes_dir / _folder(model)
    first = as_utc(start) if start is not None else None
    last = as_utc(end) if end is not None else None
    files = []
    for folder in sorted(root.glob("date=*")) if root.is_dir() else []:
        day = folder.name.removeprefix("date=")
        if first is not None and day < first.date().isoformat():
            continue
        if last is not None and day > last.date().isoformat():
            continue
        if (folder / PART).is_file():
            files.append(folder / PART)
    tables = [pq.read_table(f, schema=schema) for f in files]
    frame = (pa.concat_tables(tables) if tables else schema.empty_table()).to_pandas()
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    if first is not None:
        frame = frame[frame["at"] >= pd.Timestamp(first)]
    if last is not None:
        frame = frame[frame["at"] < pd.Timestamp(last)]
    return frame.sort_values("at", kind="stable", ignore_index=True)


def read_stream_events(settings: Settings, start: When, end: When) -> pd.DataFrame:
    """The event stream's raw events of [start, end) for the interactions source's dataset, each
    event_id once (a batch delivered twice is written twice)."""
    from features.sources import resolve
    from features.storage import stream_partition_dir
    from features.stream.zones import EVENT_SCHEMA

    dataset = resolve(settings.interactions_source).dataset
    first, last = as_utc(start), as_utc(end)
    tables = []
    for day in _days(first, last):
        folder = stream_partition_dir(settings.raw_dir, dataset, day)
        if folder.is_dir():
            for path in sorted(folder.glob("*.parquet")):
                if not path.name.startswith("."):  # a writer's temporary file
                    tables.append(pq.read_table(path, schema=EVENT_SCHEMA))
    table = pa.concat_tables(tables) if tables else EVENT_SCHEMA.empty_table()
    events = table.to_pandas()
    events["timestamp"] = pd.to_datetime(events["timestamp"], utc=True)
    events = events.drop_duplicates("event_id")
    inside = (events["timestamp"] >= pd.Timestamp(first)) & (
        events["timestamp"] < pd.Timestamp(last)
    )
    return events[inside].reset_index(drop=True)


def _days(start: datetime, end: datetime) -> list[date]:
    """The UTC days [start, end) touches."""
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _read_answers(settings: Settings, start: datetime, end: datetime) -> pd.DataFrame:
    """The answer log of [start, end), one request_id once."""
    from features.stream.zones import ANSWER_SCHEMA, read_answers

    tables = [read_answers(settings, day.isoformat()) for day in _days(start, end)]
    table = pa.concat_tables([t for t in tables if t.num_rows] or [ANSWER_SCHEMA.empty_table()])
    answers = table.to_pandas()
    answers["at"] = pd.to_datetime(answers["at"], utc=True)
    answers = answers.drop_duplicates("request_id")
    inside = (answers["at"] >= pd.Timestamp(start)) & (answers["at"] < pd.Timestamp(end))
    return answers[inside].sort_values("at", kind="stable", ignore_index=True)


def _write_days(settings: Settings, model: str, outcomes: pd.DataFrame, days) -> list[str]:
    """One partition per day of the interval that has answers; a day without any loses the
    partition an earlier run wrote (the rerun replaces the interval)."""
    schema = SCHEMAS[model]
    frame = outcomes.reindex(columns=schema.names)
    day_of = frame["at"].dt.strftime("%Y-%m-%d")
    written = []
    for day in (d.isoformat() for d in days):
        path = outcome_dir(settings, model, day) / PART
        rows = frame[day_of == day]
        if rows.empty:
            path.unlink(missing_ok=True)
            continue
        table = pa.Table.from_pandas(rows, schema=schema, preserve_index=False)
        written.append(str(write_parquet_durable(table, path)))
    return written


def _log_to_mlflow(settings, interval, summaries: dict[str, pd.DataFrame], counts) -> str:
    """One run per interval in the experiment "outcomes" (a rerun logs into the same run):
    <model>.v<version>.<colour>.<arm>.<figure> per group, the summaries as CSV artifacts."""
    import tempfile

    import mlflow
    from mlflow import MlflowClient

    from training.tracking import use_tracking

    experiment_id = use_tracking(settings, "outcomes")
    name = f"outcomes {interval.start.date()}..{interval.end.date()}"
    found = MlflowClient().search_runs(
        [experiment_id], filter_string=f"tags.mlflow.runName = '{name}'", max_results=1
    )
    existing = found[0].info.run_id if found else None
    with mlflow.start_run(run_id=existing, run_name=None if existing else name) as run:
        mlflow.set_tags(
            {"aisle.interval_start": interval.start.isoformat(), "aisle.interval_end":
             interval.end.isoformat()}
        )  # fmt: skip
        metrics = {f"{model}.outcomes": float(n) for model, n in counts.items()}
        for summary in summaries.values():
            metrics |= _group_metrics(summary)
        if metrics:
            mlflow.log_metrics(metrics)
        with tempfile.TemporaryDirectory() as folder:
            for model, summary in summaries.items():
                csv = Path(folder) / f"{FOLDERS[model]}_summary.csv"
                summary.to_csv(csv, index=False)
                mlflow.log_artifact(str(csv), "outcomes")
    return run.info.run_id


def _group_metrics(summary: pd.DataFrame) -> dict[str, float]:
    keys = ["model", "version", "colour", "arm"]
    figures = [c for c in summary.columns if c not in keys]
    metrics = {}
    for row in summary.to_dict("records"):
        model, version = row.get("model") or "unknown", row.get("version") or "unknown"
        colour, arm = row.get("colour") or "none", row.get("arm") or "none"
        prefix = _metric_name(f"{model}.v{version}.{colour}.{arm}")
        for figure in figures:
            value = row[figure]
            if value is not None and pd.notna(value):
                metrics[f"{prefix}.{figure}"] = float(value)
    return metrics


def _metric_name(text: str) -> str:
    """MLflow's metric names allow letters, digits, _ - . space : and /; anything else is _."""
    return re.sub(r"[^A-Za-z0-9_.\-/ :]", "_", text)


def _model(model: str) -> str:
    if model not in FOLDERS:
        raise ValueError(f"unknown model {model!r}; outcomes exist for {sorted(FOLDERS)}")
    return model


def _folder(model: str) -> str:
    return FOLDERS[_model(model)]
