"""The drift check of one data interval for one model: the step the `drift_monitor` DAG, the
`aisle drift check` command and the tests call.

    drift_check_step(model, start, end) -> drift flag, drifted columns, report paths, MLflow run

* **Reference**: the `AISLE_DRIFT__REFERENCE_DAYS` before the champion's data end (the version
  tag `data_interval_end`: what it was trained on); with no champion yet, the days before the
  interval. Its first three quarters anchor the per-item statistics (monitoring.frames).
* **Features**: the interval's curated rows against the reference (recommender: interactions,
  with the volume check; pricing: weekly sales, whose `log_units` is the target).
* **Prediction drift** (when there is a champion): the champion's recommendations to the
  interval's shoppers, or its proposed prices for the interval's rows, against the reference's
  (monitoring.predictions), reported beside.
* **Thresholds**: calibrated on the shop's own history (monitoring.calibration): each column's
  scores on the chunks of the interval's length before the reference end; drift is confirmed
  at the level of the data set (the drifted columns' weighted share, or the volume).
* **Realised performance** (when there is a champion): its metric on the interval against the
  band its own test window gives (monitoring.performance); a drop retrains (retrain.py).
* **Output**: `data/monitoring/<model>/<interval start>/report.html` (Evidently), `drift.json`
  and `predictions.html`, all logged to the MLflow experiment `drift-<model>`; one line per
  interval appended to `data/monitoring/<model>/timeline.jsonl` (the drift timeline's data).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from core.clock import When, as_utc
from core.settings import DriftPolicy, Settings, get_settings
from training.stages import model_stages

from .calibration import Calibration, calibrate_columns, scores_of
from .drift import DriftResult, check_drift, write_report
from .frames import (
    INTERACTION_CATEGORICAL,
    INTERACTION_NUMERICAL,
    SALES_CATEGORICAL,
    SALES_NUMERICAL,
    interaction_frame,
    sales_frame,
    split_reference,
)

log = logging.getLogger(__name__)
COLUMNS = {  # model -> the (numerical, categorical) columns its drift check compares
    "recommender": (INTERACTION_NUMERICAL, INTERACTION_CATEGORICAL),
    "pricing": (SALES_NUMERICAL, SALES_CATEGORICAL),
}


class NothingToCheck(ValueError):
    """The interval or its reference holds no curated rows."""


def monitoring_dir(settings: Settings, model: str) -> Path:
    return settings.data_dir / "monitoring" / model


@dataclass
class Compared:
    """One window checked against its reference: the result, Evidently's snapshot, and the
    frames the prediction drift reuses."""

    result: DriftResult
    snapshot: Any
    anchor: pd.DataFrame
    sample: pd.DataFrame
    current: pd.DataFrame
    categories: dict[str, str]


def drift_check_step(
    model: str, start: When, end: When, settings: Settings | None = None
) -> dict[str, Any]:
    settings = settings or get_settings()
    table = model_stages(model).table  # an unknown model is a ValueError naming the known ones
    dataset = curated_dataset(settings, table)
    start, end = as_utc(start), as_utc(end)
    reference_end, champion = _reference_end(settings, model, start)
    reference_start = reference_end - timedelta(days=settings.drift.reference_days)
    calibration = calibrate_thresholds(settings, model, dataset, reference_end, end - start)
    compared = compare_windows(
        settings, model, dataset, (start, end), (reference_start, reference_end),
        calibration.thresholds,
    )  # fmt: skip
    result = compared.result
    if calibration.note:
        result.notes.append(calibration.note)
    last_year = _same_weeks_last_year(settings, model, dataset, (start, end), calibration)
    if last_year is not None:
        result.explain_by_season(last_year.result)
    context = {
        "model": model,
        "dataset": dataset,
        "interval": {"start": start.isoformat(), "end": end.isoformat()},
        "reference": {"start": reference_start.isoformat(), "end": reference_end.isoformat()},
        "champion_version": champion,
        "calibration": calibration.to_dict(),
    }
    folder = monitoring_dir(settings, model) / start.date().isoformat()
    predicted = performance = None
    if champion is not None:
        windows = (compared.anchor, compared.sample, compared.current)
        predicted = _prediction_drift(
            settings, model, champion, windows, compared.categories, folder
        )
        performance = _realised_performance(settings, model, start, end, champion)
    paths = write_report(result, compared.snapshot, folder, {**context, "performance": performance})
    if predicted is not None:
        paths["predictions_html"] = predicted["report"]
    run_id = _log_to_mlflow(settings, model, start, result, paths, predicted, performance)
    record = {**context, **result.to_dict(), "report": paths, "mlflow_run_id": run_id}
    record["prediction"] = predicted
    record["performance"] = performance
    _append_timeline(settings, model, record)
    level = logging.WARNING if result.drift else logging.INFO
    log.log(
        level,
        "%s drift %s for %s: columns %s, volume ratio %s; report %s; MLflow run %s",
        model, "CONFIRMED" if result.drift else "not found", start.date(),
        result.drifted_columns or "none", result.volume_ratio, paths["html"], run_id,
    )  # fmt: skip
    return record


def compare_windows(
    settings: Settings,
    model: str,
    dataset: str,
    window: tuple[datetime, datetime],
    reference: tuple[datetime, datetime],
    thresholds: dict[str, float] | None = None,
) -> Compared:
    """The curated rows of `window` against those of `reference`: the check itself, for a live
    interval and for a calibration chunk alike."""
    table = model_stages(model).table
    current = read_curated(settings, dataset, table, *window)
    past = read_curated(settings, dataset, table, *reference)
    if current.empty or past.empty:
        which = "interval" if current.empty else "reference window"
        raise NothingToCheck(f"no curated {dataset} {table} in the {which}; ingest it first")
    categories = _categories(settings, dataset, window[1]) if model == "recommender" else {}
    return compare_frames(model, current, past, categories, settings.drift, thresholds)


def compare_frames(
    model: str,
    current: pd.DataFrame,
    past: pd.DataFrame,
    categories: dict[str, str],
    policy: DriftPolicy,
    thresholds: dict[str, float] | None = None,
) -> Compared:
    """Canonical rows of a window against those of its reference window (`past`), described
    against the reference's anchor (monitoring.frames)."""
    anchor, sample = split_reference(past, model_stages(model).time_column)
    if model == "recommender":
        ours = interaction_frame(current, anchor, categories)
        theirs = interaction_frame(sample, anchor, categories)
        stamps = pd.Series(pd.to_datetime(past.timestamp, utc=True))
        result, snapshot = check_drift(
            ours, theirs, *COLUMNS[model], policy, "timestamp", stamps, thresholds
        )
    else:
        ours, theirs = sales_frame(current, anchor), sales_frame(sample, anchor)
        result, snapshot = check_drift(ours, theirs, *COLUMNS[model], policy, None, None,
                                       thresholds)  # fmt: skip
    return Compared(result, snapshot, anchor, sample, current, categories)


def _same_weeks_last_year(
    settings: Settings,
    model: str,
    dataset: str,
    window: tuple[datetime, datetime],
    calibration: Calibration,
) -> Compared | None:
    """The interval against the reference window that ends 52 weeks before its end (its last
    quarter: the same weeks a year earlier), when the curated history reaches that far."""
    from features.storage import list_partitions

    if not settings.drift.seasonal_reference:
        return None
    table = model_stages(model).table
    days = list_partitions(settings.curated_dir, dataset, table)
    year = timedelta(weeks=52)
    reference = (window[1] - year - timedelta(days=settings.drift.reference_days),
                 window[1] - year)  # fmt: skip
    if not days or as_utc(days[0].name.removeprefix("date=")) > reference[0]:
        return None
    try:
        return compare_windows(settings, model, dataset, window, reference,
                               calibration.thresholds)  # fmt: skip
    except (NothingToCheck, ValueError):
        return None


def calibrate_thresholds(
    settings: Settings, model: str, dataset: str, reference_end: datetime, length: timedelta
) -> Calibration:
    """Each column's threshold from the scores of the chunks of `length` before
    `reference_end`, each checked against its own reference (monitoring.calibration)."""
    reference = timedelta(days=settings.drift.reference_days)

    def score(start: datetime, end: datetime) -> dict[str, float] | None:
        try:
            window, past = (start, end), (start - reference, start)
            return scores_of(compare_windows(settings, model, dataset, window, past).result)
        except (NothingToCheck, ValueError):  # ValueError: no column has values in both
            return None

    folder = monitoring_dir(settings, model) / "calibration"
    return calibrate_columns(settings.drift, COLUMNS[model], model == "recommender",
                             reference_end, length, score, folder)  # fmt: skip


def _realised_performance(settings, model, start, end, champion) -> dict[str, Any]:
    """The champion's realised performance (monitoring.performance); when it cannot be
    evaluated, the drift check still stands and the record says why, at ERROR in the log."""
    from .performance import realised_performance

    try:
        return realised_performance(model, start, end, settings, champion)
    except Exception as failed:  # the drift half of the check must not go dark with it
        log.exception("%s: realised performance of version %s failed", model, champion)
        return {"model": model, "champion_version": champion, "value": None, "judged": False,
                "dropped": False, "reason": f"could not be evaluated: {failed}"}  # fmt: skip


def _prediction_drift(settings, model, champion, windows, categories, folder) -> dict | None:
    """What the champion proposes for the interval against what it proposes for the reference
    (`windows`: the reference's anchor and sample, and the interval)."""
    from core.files import atomic_path

    from .predictions import prediction_drift, price_prediction_drift

    if model == "recommender":
        from training.recommender.registry import load_recommender

        recommender = load_recommender(f"models:/recommender/{champion}")
        found = prediction_drift(recommender, *windows, categories, settings.drift)
    else:
        from training.pricing.registry import load_pricing

        pricing = load_pricing(f"models:/pricing/{champion}")
        _, sample, current = windows
        found = price_prediction_drift(settings, pricing, sample, current, settings.drift)
    if found is None:
        return None
    result, snapshot = found
    html = folder / "predictions.html"
    with atomic_path(html) as tmp:
        snapshot.save_html(str(tmp))
    return {**result.to_dict(), "report": str(html)}


def read_curated(
    settings: Settings, dataset: str, table: str, start: datetime, end: datetime
) -> pd.DataFrame:
    """The curated partitions dated in [start, end), as one frame."""
    from features.etl import CURATED_FILE
    from features.storage import list_partitions

    first, last = start.date().isoformat(), end.date().isoformat()
    files = [
        str(folder / CURATED_FILE)
        for folder in list_partitions(settings.curated_dir, dataset, table)
        if first <= folder.name.removeprefix("date=") < last and (folder / CURATED_FILE).exists()
    ]
    if not files:
        return pd.DataFrame()
    with duckdb.connect() as con:
        frame = con.execute("SELECT * FROM read_parquet($files)", {"files": files}).df()
    if "timestamp" in frame:
        frame["timestamp"] = pd.to_datetime(frame.timestamp, utc=True)
    return frame


def curated_dataset(settings: Settings, table: str) -> str:
    from features.sources import resolve

    source = settings.interactions_source if table == "interactions" else settings.sales_source
    return resolve(source).dataset


def _reference_end(settings: Settings, model: str, start: datetime) -> tuple[datetime, str | None]:
    """The champion's data end (what it learned from) or, with no champion, the interval start."""
    from training.gate import champion_version
    from training.tracking import data_end, use_tracking

    use_tracking(settings, f"drift-{model}")
    version = champion_version(model)
    if version is None:
        return start, None
    end = data_end(model, version)
    return (min(end, start) if end else start), version


def _categories(settings: Settings, dataset: str, as_of: datetime) -> dict[str, str]:
    """Each item's first category, from the item snapshot known at `as_of` or, when none was
    curated that early (a backfill lands one snapshot for a long span), the next one."""
    from features.etl import CURATED_FILE
    from features.feature_tables import latest_snapshot
    from features.storage import list_partitions

    snapshot = latest_snapshot(settings, dataset, "items", as_of.date())
    if snapshot is None:
        later = [
            folder / CURATED_FILE
            for folder in list_partitions(settings.curated_dir, dataset, "items")
            if (folder / CURATED_FILE).exists()
        ]
        snapshot = later[0] if later else None
    if snapshot is None:
        return {}
    items = pd.read_parquet(snapshot, columns=["item_id", "category"])
    return dict(zip(items.item_id, items.category.astype(str).str.split("|").str[0], strict=True))


def _log_to_mlflow(settings, model, start, result, paths, predicted=None, performance=None) -> str:
    import mlflow

    from training.tracking import use_tracking

    use_tracking(settings, f"drift-{model}")
    with mlflow.start_run(run_name=f"drift {start.date()}") as run:
        mlflow.set_tags({"aisle.model": model, "aisle.drift": str(result.drift).lower()})
        metrics = {"drift": float(result.drift), "share_drifted": result.share_drifted}
        metrics |= {f"score_{c.column}": c.score for c in result.columns}
        if result.volume_ratio is not None:
            metrics["volume_ratio"] = result.volume_ratio
        mlflow.log_metrics(metrics)
        if predicted is not None:
            mlflow.log_metric("prediction_share_drifted", predicted["share_drifted"])
        if performance and performance.get("value") is not None:
            metric = performance["metric"].replace("@", "_at_")
            mlflow.log_metric(f"realised_{metric}", performance["value"])
            band = performance.get("band") or {}
            for edge in ("low", "high", "expected"):
                if band.get(edge) is not None:
                    mlflow.log_metric(f"band_{edge}_{metric}", band[edge])
            mlflow.set_tag("aisle.performance_dropped", str(bool(performance["dropped"])).lower())
        for path in paths.values():
            mlflow.log_artifact(path, "drift")
    return run.info.run_id


def _append_timeline(settings: Settings, model: str, record: dict) -> None:
    """One line per interval; a rerun of an interval replaces its line (idempotent)."""
    from core.files import atomic_path

    path = monitoring_dir(settings, model) / "timeline.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    start = record["interval"]["start"]
    kept = [line for line in lines if json.loads(line)["interval"]["start"] != start]
    kept.append(json.dumps(record, default=str))
    kept.sort(key=lambda line: json.loads(line)["interval"]["start"])
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(kept) + "\n")
