"""Drift of a current window against a reference window, with Evidently 0.7.

One `ValueDrift` per monitored column, each with the method and threshold from config
(`AISLE_DRIFT__*`: per-column overrides, else the numerical or categorical default), in a
`Report(include_tests=True)`: a column has drifted when its drift test fails (Evidently knows
which way each method counts). The preset `DataDriftPreset` computes every column three times
(its column count, each column, and its table); the per-column metrics give the same numbers
once, which matters at a million rows (benchmarks/drift.py).

Beside the distributions, the window's **volume**: its rows against the reference's rows on the
same weekday (a seasonal-naive expectation, so a Saturday is not compared with a Tuesday).

Thresholds are the configured ones unless the caller passes calibrated ones (`thresholds`, from
monitoring.calibration: each column's own variability on the shop's history). Where a year of
history exists, a column that drifts but does not against the same weeks a year earlier is
seasonal (`explain_by_season`): reported, not confirmed. Drift is confirmed **at the level of
the data set**: when the drifted columns carry at least
`min_drifted_share` of the weight (`weights`: the champion's feature importance where it gives
one, else equal), or the volume moves more than its tolerance (calibrated too).

Each check can write its HTML report and a JSON record of its numbers (`write_report`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.settings import DriftPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    method: str
    threshold: float
    score: float
    drifted: bool


@dataclass
class DriftResult:
    columns: list[ColumnDrift]
    rows: int
    expected_rows: float | None  # from the reference's same weekdays; None: not checked
    volume_drifted: bool
    min_drifted_share: float
    notes: list[str] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)  # column -> weight; empty: equal
    volume_tolerance: float | None = None
    seasonal: list[str] = field(default_factory=list)  # drifted, but as the same weeks last year

    @property
    def drifted_columns(self) -> list[str]:
        """The columns that drifted and that the season does not explain."""
        return [c.column for c in self.columns if c.drifted and c.column not in self.seasonal]

    def explain_by_season(self, last_year: DriftResult) -> None:
        """Columns (and the volume) that drift against the recent reference but not against
        the same weeks a year earlier are seasonal: reported, not confirmed."""
        still = set(last_year.drifted_columns)
        self.seasonal = [c for c in self.drifted_columns if c not in still]
        if self.volume_drifted and not last_year.volume_drifted:
            self.seasonal.append("volume")
            self.volume_drifted = False

    @property
    def share_drifted(self) -> float:
        """The drifted columns' share of the weight (of the columns, when unweighted)."""
        weight = {c.column: self.weights.get(c.column, 1.0 if not self.weights else 0.0)
                  for c in self.columns}  # fmt: skip
        total = sum(weight.values())
        return sum(weight[c] for c in self.drifted_columns) / total if total else 0.0

    @property
    def volume_ratio(self) -> float | None:
        return None if not self.expected_rows else self.rows / self.expected_rows

    @property
    def drift(self) -> bool:
        drifted = bool(self.drifted_columns) and self.share_drifted >= self.min_drifted_share
        return drifted or self.volume_drifted

    def to_dict(self) -> dict[str, Any]:
        return {
            "drift": self.drift,
            "drifted_columns": self.drifted_columns,
            "share_drifted": self.share_drifted,
            "rows": self.rows,
            "expected_rows": self.expected_rows,
            "volume_ratio": self.volume_ratio,
            "volume_drifted": self.volume_drifted,
            "volume_tolerance": self.volume_tolerance,
            "min_drifted_share": self.min_drifted_share,
            "weights": self.weights,
            "seasonal": self.seasonal,
            "columns": [asdict(c) for c in self.columns],
            "notes": self.notes,
        }


def check_drift(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    policy: DriftPolicy,
    time_column: str | None = None,
    volume_reference: pd.Series | None = None,
    thresholds: dict[str, float] | None = None,
    weights: dict[str, float] | None = None,
) -> tuple[DriftResult, Any]:
    """The drift of `current` against `reference`, and Evidently's snapshot (for its HTML).

    With `time_column`, the volume is checked too: `current`'s rows against the mean daily rows
    on the same weekdays of `volume_reference` (the whole reference window's timestamps; by
    default `reference[time_column]`). `thresholds` (column -> threshold, "volume" -> its
    tolerance) override the configured ones; `weights` weigh the columns in the decision.
    """
    thresholds = thresholds or {}
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    notes: list[str] = []
    usable = []
    for column in [*numerical, *categorical]:
        if current[column].notna().any() and reference[column].notna().any():
            usable.append(column)
        else:
            notes.append(f"{column}: no values in one window; not compared")
    numerical = [c for c in numerical if c in usable]
    categorical = [c for c in categorical if c in usable]
    if not usable:
        raise ValueError("no column has values in both windows: nothing to compare")
    metrics = [
        ValueDrift(
            column=c,
            method=column_method(policy, c, c in numerical),
            threshold=thresholds.get(c, fixed_threshold(policy, c, c in numerical)),
        )
        for c in usable
    ]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)

    def dataset(frame: pd.DataFrame) -> Dataset:
        data = frame[usable].copy()
        for c in categorical:
            data[c] = data[c].astype("string")
        return Dataset.from_pandas(data, data_definition=definition)

    snapshot = Report(metrics, include_tests=True).run(dataset(current), dataset(reference))
    columns = _column_results(snapshot)
    expected = None
    if time_column:
        stamps = reference[time_column] if volume_reference is None else volume_reference
        expected = _expected_rows(current[time_column], stamps)
    tolerance = thresholds.get("volume", policy.volume_tolerance) if time_column else None
    volume_drifted = bool(expected and abs(len(current) / expected - 1) > tolerance)
    result = DriftResult(columns, len(current), expected, volume_drifted,
                         policy.min_drifted_share, notes, weights or {}, tolerance)  # fmt: skip
    return result, snapshot


def column_method(policy: DriftPolicy, column: str, numerical: bool) -> str:
    default = policy.numerical_method if numerical else policy.categorical_method
    return policy.per_column_method.get(column, default)


def fixed_threshold(policy: DriftPolicy, column: str, numerical: bool) -> float:
    """The configured threshold of a column (its override, else the type's default)."""
    default = policy.numerical_threshold if numerical else policy.categorical_threshold
    return float(policy.per_column_threshold.get(column, default))


def _column_results(snapshot) -> list[ColumnDrift]:
    failed = {
        t.metric_config.metric_id: str(t.status.value) == "FAIL" for t in snapshot.tests_results
    }
    out = []
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if not config["type"].endswith("ValueDrift"):
            continue
        out.append(
            ColumnDrift(
                column=config["column"],
                method=str(config["method"]),
                threshold=float(config["threshold"]),
                score=float(metric["value"]),
                drifted=failed.get(metric["id"], False),
            )
        )
    return out


def _expected_rows(current: pd.Series, reference: pd.Series) -> float | None:
    """Mean rows per reference day on the weekdays `current` covers, summed over its days."""
    ref_days = pd.to_datetime(reference, utc=True).dt.floor("D")
    per_day = ref_days.value_counts()
    if per_day.empty:
        return None
    weekday_mean = per_day.groupby(per_day.index.weekday).mean()
    days = pd.to_datetime(current, utc=True).dt.floor("D").unique()
    if len(days) == 0:
        return None
    means = [weekday_mean.get(day.weekday(), per_day.mean()) for day in days]
    return float(np.sum(means))


def write_report(result: DriftResult, snapshot, folder: Path, extra: dict | None = None) -> dict:
    """`report.html` (Evidently's) and `drift.json` (the numbers) in `folder`; their paths."""
    from core.files import atomic_path, write_json_atomic

    folder.mkdir(parents=True, exist_ok=True)
    html = folder / "report.html"
    with atomic_path(html) as tmp:
        snapshot.save_html(str(tmp))
    record = {**(extra or {}), **result.to_dict()}
    path = write_json_atomic(json.loads(json.dumps(record, default=str)), folder / "drift.json")
    return {"html": str(html), "json": str(path)}
