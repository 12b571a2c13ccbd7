"""Drift thresholds calibrated on the shop's own history.

A fixed threshold fires every week on a shop whose weeks differ from each other anyway (the
promotions rotate, the catalogue turns over): drift was confirmed in 117 of 117 orange-juice
weeks. The check's statistic has its own variability on such a shop, and the threshold should
sit above it. NannyML's answer, followed here: the reference period is cut into chunks of the
size of the interval being checked, and each column's threshold is the mean of its chunk
scores plus `calibration_sigmas` standard deviations (NannyML's `StandardDeviationThreshold`),
with one change: the highest score is left out of the mean and deviation (from five chunks on),
so one drifted chunk among ten (a shift that began just before the reference end) does not lift
the threshold above itself, as it lifts a plain mean + 3 sd. (The median and MAD would resist
more, but ten chunks give a noisy MAD: on ten draws of N(0.3, 0.05) it said 0.012, and a
threshold that low alarms on a healthy shop.)

**The chunks** are the `calibration_chunks` intervals of the checked interval's length that end
at the reference end (the champion's data end), each scored **as the live check would have
scored it**: against the `reference_days` before the chunk, with the same frames and methods.
So the null distribution is that of the very statistic the check compares with the threshold,
on this shop, in ordinary weeks; chunks whose own reference is empty (the shop's first days)
are left out. Fewer than `min_calibration_chunks` chunks: the fixed thresholds stand, and the
check's notes say so.

**Directions**: distances (Wasserstein, Jensen-Shannon, PSI, ...) drift when high; p-value
methods (KS, chi-square, ...) drift when low, so they are calibrated on -log10(p). A calibrated
threshold is never stricter than the configured one: the configured threshold is the smallest
change worth an alarm even on a quiet shop (the simulator's days).
The volume's tolerance is calibrated the same way on |rows / expected rows - 1|.

A chunk's scores are kept in `data/monitoring/<model>/calibration/` (one JSON per chunk), so the
next interval only scores the chunks it has not seen.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from core.settings import DriftPolicy

from .drift import DriftResult, column_method, fixed_threshold

VOLUME = "volume"
# Evidently's stattests whose score is a p-value (drift when below the threshold)
P_VALUE_METHODS = frozenset({
    "ks", "chisquare", "z", "fisher_exact", "g_test", "t_test", "mannw", "cramer_von_mises",
    "anderson", "epps_singleton", "empirical_mmd",
})  # fmt: skip


@dataclass(frozen=True)
class ColumnBand:
    """One column's calibration: its chunk scores' centre and spread (on the drift scale), and
    the threshold used (on the method's own scale)."""

    column: str
    method: str
    fixed: float
    threshold: float
    mean: float
    std: float
    chunks: int


@dataclass
class Calibration:
    thresholds: dict[str, float]  # column (and "volume") -> threshold to check with
    bands: dict[str, ColumnBand]
    chunks: list[str]  # the chunks' starts, ISO
    note: str | None = None  # why the fixed thresholds stand, when they do

    def to_dict(self) -> dict[str, Any]:
        return {
            "calibrated": self.note is None,
            "chunks": self.chunks,
            "note": self.note,
            "bands": {c: asdict(b) for c, b in self.bands.items()},
        }


def drift_scale(method: str, score: float) -> float:
    """A score on a scale where higher means more drift."""
    if method in P_VALUE_METHODS:
        return -math.log10(max(score, 1e-300))
    return score


def from_drift_scale(method: str, value: float) -> float:
    return 10.0 ** (-value) if method in P_VALUE_METHODS else value


def calibrate(
    chunk_scores: list[dict[str, float]],
    methods: dict[str, str],
    fixed: dict[str, float],
    policy: DriftPolicy,
) -> Calibration:
    """Thresholds from the chunks' scores (column -> raw score; "volume" -> |ratio - 1|).
    `methods` and `fixed`: each column's method and configured threshold ("volume": its
    tolerance, method "distance")."""
    if len(chunk_scores) < policy.min_calibration_chunks:
        note = (f"{len(chunk_scores)} calibration chunks (of {policy.min_calibration_chunks} "
                "needed): the configured thresholds stand")  # fmt: skip
        return Calibration(dict(fixed), {}, [], note)
    thresholds, bands = {}, {}
    for column, method in methods.items():
        scores = [drift_scale(method, s[column]) for s in chunk_scores
                  if s.get(column) is not None and np.isfinite(s[column])]  # fmt: skip
        if len(scores) < policy.min_calibration_chunks:
            thresholds[column] = fixed[column]
            continue
        mean, std = trimmed_mean_and_sd(np.asarray(scores))
        floor = drift_scale(method, fixed[column])
        threshold = from_drift_scale(method, max(mean + policy.calibration_sigmas * std, floor))
        thresholds[column] = threshold
        bands[column] = ColumnBand(column, method, fixed[column], threshold, mean, std,
                                   len(scores))  # fmt: skip
    return Calibration(thresholds, bands, [])


def trimmed_mean_and_sd(scores: np.ndarray) -> tuple[float, float]:
    """The mean and standard deviation of the scores, the highest left out when there are
    five or more (a drifted chunk does not widen the band that should catch it)."""
    kept = np.sort(scores)[:-1] if len(scores) >= 5 else scores
    return float(np.mean(kept)), float(np.std(kept, ddof=1))


def chunk_windows(
    reference_end: datetime, length: timedelta, count: int
) -> list[tuple[datetime, datetime]]:
    """The `count` windows of `length` that end at `reference_end`, oldest first."""
    return [(reference_end - j * length, reference_end - (j - 1) * length)
            for j in range(count, 0, -1)]  # fmt: skip


def scored_chunks(
    folder: Path,
    windows: list[tuple[datetime, datetime]],
    key: dict[str, Any],
    score: Callable[[datetime, datetime], dict[str, float] | None],
) -> list[tuple[str, dict[str, float]]]:
    """(chunk start, scores) of each window `score` can score (None: nothing to compare),
    read from `folder` when an earlier check scored it with the same `key` (methods, reference
    days), else scored and kept."""
    from core.files import write_json_atomic

    out = []
    for start, end in windows:
        hours = round((end - start).total_seconds() / 3600)
        path = folder / f"{start.strftime('%Y-%m-%dT%H%M')}_{hours}h.json"
        kept = json.loads(path.read_text()) if path.exists() else None
        if kept is None or kept.get("key") != key:
            kept = {"key": key, "scores": score(start, end)}
            write_json_atomic(kept, path)
        if kept["scores"] is not None:
            out.append((start.isoformat(), kept["scores"]))
    return out


def scores_of(result: DriftResult) -> dict[str, float]:
    """A checked window's scores as calibration keeps them (the volume as |ratio - 1|)."""
    scores = {c.column: c.score for c in result.columns}
    if result.volume_ratio is not None:
        scores[VOLUME] = abs(result.volume_ratio - 1)
    return scores


def calibrate_columns(
    policy: DriftPolicy,
    columns: tuple[list[str], list[str]],
    volume: bool,
    reference_end: datetime,
    length: timedelta,
    score: Callable[[datetime, datetime], dict[str, float] | None],
    folder: Path | None = None,
) -> Calibration:
    """The thresholds of the (numerical, categorical) `columns` (and the volume's tolerance)
    from the chunks of `length` before `reference_end`; `score(start, end)` checks one chunk
    as the live check would (None: nothing to compare). Chunk scores are kept in `folder`."""
    numerical, categorical = columns
    methods = {c: column_method(policy, c, c in numerical) for c in [*numerical, *categorical]}
    fixed = {c: fixed_threshold(policy, c, c in numerical) for c in methods}
    if volume:
        methods[VOLUME], fixed[VOLUME] = "distance", policy.volume_tolerance
    if policy.calibration_chunks == 0:
        return Calibration(fixed, {}, [], "calibration switched off: the configured thresholds")
    windows = chunk_windows(reference_end, length, policy.calibration_chunks)
    if folder is None:
        chunks = [(a.isoformat(), found) for a, b in windows if (found := score(a, b))]
    else:
        key = {"reference_days": policy.reference_days, "methods": methods}
        chunks = scored_chunks(folder, windows, key, score)
    calibration = calibrate([scores for _, scores in chunks], methods, fixed, policy)
    calibration.chunks = [start for start, _ in chunks]
    return calibration
