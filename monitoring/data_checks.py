"""Data validation before training: a training set that fails stops the run, with a report.

The checks are Evidently tests (`Report(..., include_tests=True)`), one per rule:

* **schema**: the columns a model needs are there (checked before anything else);
* **row count** against the last accepted training set of the model: within
  +-`AISLE_DATA_CHECKS__ROW_CHANGE_TOLERANCE` (a first set needs rows);
* **null rates**: none in ids and required values, at most a share in optional features;
* **ranges**: units >= 0, prices and costs > 0, flags in {0, 1}, shares in [0, 1], history
  lengths in 1..1000;
* **category sets**: the share of rows whose store, item or category the last accepted set did
  not have is at most `AISLE_DATA_CHECKS__MAX_NEW_CATEGORY_SHARE`.

A passing set becomes the next one's "last accepted" of its model and data set
(`data/monitoring/<model>/accepted-<dataset>.json`: its row count and category sets). Each
check writes `validation.html` and `validation.json` beside the training set.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from core.settings import Settings, get_settings

log = logging.getLogger(__name__)


class TrainingDataRejected(ValueError):
    """The training set failed validation; the message lists every failed check."""


@dataclass(frozen=True)
class Rules:
    required: tuple[str, ...]  # must exist, no nulls
    optional: dict[str, float] = field(default_factory=dict)  # column -> largest null share
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    category_sets: tuple[str, ...] = ()


RULES = {
    "recommender": Rules(
        required=("user_id", "role", "item_id", "history_length"),
        optional={"category": 0.5},
        ranges={"history_length": (1, 1000)},
        category_sets=("category",),
    ),
    "pricing": Rules(
        required=("item_id", "store_id", "event_timestamp", "units", "price", "role"),
        optional={"cost": 0.5, "promo": 0.0, "feature": 0.5, "price_lag1": 0.5, "units_lag1": 0.5},
        ranges={
            "units": (0, None),
            "price": (1e-9, None),
            "cost": (1e-9, None),
            "promo": (0, 1),
            "feature": (0, 1),
        },
        category_sets=("item_id", "store_id"),
    ),
}


@dataclass
class DataCheckResult:
    model: str
    rows: int
    failures: list[str]
    tests: list[dict[str, str]]
    report: dict[str, str]

    @property
    def passed(self) -> bool:
        return not self.failures


def validate_step(
    model: str, training_set: str | Path, settings: Settings | None = None
) -> dict[str, Any]:
    """Validate `model`'s training set; raise TrainingDataRejected with every reason if it fails."""
    settings = settings or get_settings()
    training_set = Path(training_set)
    frame = profile(model, training_set)
    dataset = _dataset(training_set)
    previous = _accepted(settings, model, dataset)
    result = check(model, frame, previous, settings, training_set.parent)
    if not result.passed:
        log.error("training set %s rejected: %s", training_set, "; ".join(result.failures))
        report = f" (report: {result.report['html']})" if result.report else ""
        raise TrainingDataRejected(
            f"{model} training set {training_set} failed {len(result.failures)} check(s): "
            + "; ".join(result.failures)
            + report
        )
    _accept(settings, model, dataset, frame)
    log.info(
        "training set %s passed %d checks (%s)", training_set, len(result.tests), result.report
    )
    return {"model": model, "rows": result.rows, "checks": len(result.tests), **result.report}


def profile(model: str, training_set: Path) -> pd.DataFrame:
    """The rows the checks see: pricing's training set as it is; the recommender's fit histories
    one row per (user, item), with the item's category and the history's length."""
    frame = pd.read_parquet(training_set)
    if model == "pricing":
        return frame
    import pyarrow.parquet as pq

    metadata = json.loads(pq.read_schema(training_set).metadata[b"aisle"])
    fit = frame[frame.role == "fit"]
    exploded = fit.assign(history_length=fit.history_item_ids.map(len)).explode("history_item_ids")
    exploded = exploded.rename(columns={"history_item_ids": "item_id"})
    columns = ["user_id", "role", "item_id", "history_length"]
    categories = metadata.get("categories") or {}
    if categories:  # a source without an item table has none: nothing to check then
        exploded["category"] = exploded.item_id.map(categories)
        columns.append("category")
    return exploded[columns].reset_index(drop=True)


def check(
    model: str,
    frame: pd.DataFrame,
    previous: dict | None,
    settings: Settings,
    folder: Path,
) -> DataCheckResult:
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import MissingValueCount, OutListValueCount, OutRangeValueCount, RowCount
    from evidently.tests import eq, gte, lte

    rules, policy = RULES[model], settings.data_checks
    missing = [c for c in rules.required if c not in frame.columns]
    if missing:
        failures = [f"schema: missing column(s) {', '.join(missing)}"]
        return DataCheckResult(model, len(frame), failures, [], {})
    metrics = []
    if previous:
        low = previous["rows"] * (1 - policy.row_change_tolerance)
        high = previous["rows"] * (1 + policy.row_change_tolerance)
        metrics.append(RowCount(tests=[gte(float(low)), lte(float(high))]))
    else:
        metrics.append(RowCount(tests=[gte(1)]))
    for column in rules.required:
        metrics.append(MissingValueCount(column=column, tests=[eq(0)]))
    for column, share in rules.optional.items():
        if column in frame.columns:
            metrics.append(MissingValueCount(column=column, share_tests=[lte(share)]))
    for column, (left, right) in rules.ranges.items():
        if column in frame.columns and frame[column].notna().any():
            low = left if left is not None else float(frame[column].min())
            high = right if right is not None else float(frame[column].max())
            metrics.append(OutRangeValueCount(column=column, left=low, right=high, tests=[eq(0)]))
    for column in rules.category_sets:
        known = (previous or {}).get("categories", {}).get(column)
        if column in frame.columns and known:
            share = policy.max_new_category_share
            metrics.append(OutListValueCount(column=column, values=known, share_tests=[lte(share)]))
    # Evidently sees only the columns a rule names: the others (the cross prices' arrays) cost
    # it seconds per 10k rows to cast, and no check reads them
    named = [*rules.required, *rules.optional, *rules.ranges, *rules.category_sets]
    data = frame[[c for c in dict.fromkeys(named) if c in frame.columns]].copy()
    numerical = [c for c in data.columns if pd.api.types.is_numeric_dtype(data[c])]
    categorical = [c for c in data.columns if c not in numerical]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    for c in categorical:
        data[c] = data[c].astype("string")
    snapshot = Report(metrics, include_tests=True).run(
        Dataset.from_pandas(data, data_definition=definition), None
    )
    tests = [
        {"name": t.name, "status": str(t.status.value), "description": t.description}
        for t in snapshot.tests_results
    ]
    failures = [t["description"] for t in tests if t["status"] == "FAIL"]
    report = _write(snapshot, tests, folder)
    return DataCheckResult(model, len(frame), failures, tests, report)


def _write(snapshot, tests: list[dict], folder: Path) -> dict[str, str]:
    from core.files import atomic_path, write_json_atomic

    html = folder / "validation.html"
    with atomic_path(html) as tmp:
        snapshot.save_html(str(tmp))
    path = write_json_atomic({"tests": tests}, folder / "validation.json")
    return {"html": str(html), "json": str(path)}


def _dataset(training_set: Path) -> str:
    import pyarrow.parquet as pq

    metadata = pq.read_schema(training_set).metadata or {}
    return json.loads(metadata.get(b"aisle", b"{}")).get("dataset", "unknown")


def _accepted_path(settings: Settings, model: str, dataset: str) -> Path:
    return settings.data_dir / "monitoring" / model / f"accepted-{dataset}.json"


def _accepted(settings: Settings, model: str, dataset: str) -> dict | None:
    path = _accepted_path(settings, model, dataset)
    return json.loads(path.read_text()) if path.exists() else None


def _accept(settings: Settings, model: str, dataset: str, frame: pd.DataFrame) -> None:
    from core.files import write_json_atomic

    categories = {
        c: sorted(frame[c].dropna().astype(str).unique().tolist())
        for c in RULES[model].category_sets
        if c in frame.columns
    }
    path = _accepted_path(settings, model, dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic({"rows": len(frame), "categories": categories}, path)
