"""The champion's realised performance on one data interval, against the band its own test
window gives: the check that retrains a model for "performance".

    realised_performance(model, start, end) -> value, band, judged, dropped, reason

* **Units and their values**, the same way on the interval and on the test window:
  - recommender: a user is a unit when they touched an item in the interval that their history
    (their curated interactions in the `history_days` before the interval, most recent first,
    distinct) does not hold, protocol B's targets (training/recommender/dataset.py; every event
    type counts), and with the champion's buy-again setting on the history items it allows
    again. The champion ranks `K` items from the history, as the gate does; the unit's
    values are its NDCG@10 (primary, higher is better) and Recall@10, the gate's per-user
    formulas (training.recommender.evaluate.per_user_metrics). The interval's value is the mean.
  - pricing: a unit is a curated sales row (store x item x week) with the `pricing_v1` features
    known at its week's start, at the price that was charged, as in a training set. Its values
    are the squared and absolute error of the champion's log(1 + units); the interval's value is
    the RMSE (primary, lower is better), the gate's metric on the same rows, and the MAE.
* **The band**: the champion's test window, [data end - recommender_test_days days (or
  pricing_test_weeks weeks), data end) with the data end its `data_interval_end` tag, is cut
  back from its end into chunks of the interval's length, each evaluated as an interval (the
  history before the chunk). A two-stage bootstrap (`bootstrap_rounds` draws, seeded) picks a
  chunk at random, then draws as many units as the interval has, with replacement, from it: the
  statistic's spread is the sampling noise of an interval that size plus the chunk-to-chunk
  variation the model showed where it was known to be good. The band is the (1 - confidence) and
  confidence quantiles of those draws around `expected`, the statistic over the whole window.
* **The verdict**: the metric dropped when it falls outside the band on its worse side (NDCG
  below `low`, RMSE above `high`). An interval with fewer than `min_units` units is reported,
  not judged; so is one whose band cannot be formed (no tag, no unit in the window).

The band's per-unit values are kept per champion version and chunk length in
`data/monitoring/<model>/bands/` (the next interval only redraws the bootstrap, which depends on
its unit count). The caller (the drift check) logs the result; nothing here writes to MLflow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from core.clock import When, as_utc
from core.settings import PerformancePolicy, Settings, get_settings
from training.stages import model_stages

from .monitor import curated_dataset, monitoring_dir, read_curated
from .predictions import histories

log = logging.getLogger(__name__)
RECOMMEND_BATCH = 1024  # users per recommend_batch call (a dense users x items batch each)
MAX_DRAWS = 4_000_000  # bootstrap indices held at once (rounds are drawn in blocks)
UNITS = "units"  # the per-unit frames' primary column


@dataclass(frozen=True)
class Metric:
    """A model's primary metric: its name, which way is better, how the per-unit values make it,
    and what its units are called."""

    name: str
    better: Literal["higher", "lower"]
    statistic: Callable[[np.ndarray], np.ndarray]  # per-unit values -> the metric, last axis
    unit_name: str
    secondary: tuple[str, ...]  # per-unit columns reported as their mean


def mean(values: np.ndarray) -> np.ndarray:
    return np.mean(values, axis=-1)


def root_mean(squared_errors: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean(squared_errors, axis=-1))


METRICS = {
    "recommender": Metric("ndcg@10", "higher", mean, "users", ("recall@10",)),
    "pricing": Metric("rmse", "lower", root_mean, "rows", ("mae",)),
}


@dataclass(frozen=True)
class Band:
    expected: float  # the statistic over every unit of the test window
    low: float  # the (1 - confidence) quantile of the bootstrap draws
    high: float  # the confidence quantile
    confidence: float
    chunks: int  # chunks of the test window holding units
    reference_units: int

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}


# ---- the band and the verdict (pure) ---------------------------------------------------------
def bootstrap_band(
    values: np.ndarray,
    chunks: np.ndarray,
    units: int,
    statistic: Callable[[np.ndarray], np.ndarray],
    policy: PerformancePolicy,
) -> Band:
    """The two-stage bootstrap: each of `policy.bootstrap_rounds` draws picks a chunk uniformly,
    then `units` of its values with replacement, and takes the statistic; the band holds the
    draws' (1 - confidence) and confidence quantiles. `chunks[i]` labels `values[i]`."""
    if units < 1 or len(values) == 0:
        raise ValueError(f"a band needs units to draw ({units}) and values to draw from")
    order = np.argsort(chunks, kind="stable")
    values = np.asarray(values, dtype=np.float64)[order]
    _, starts, sizes = np.unique(np.asarray(chunks)[order], return_index=True, return_counts=True)
    rng = np.random.default_rng(policy.seed)
    rounds = policy.bootstrap_rounds
    picked = rng.integers(len(sizes), size=rounds)
    draws = np.empty(rounds)
    block = max(1, MAX_DRAWS // units)
    for first in range(0, rounds, block):
        chosen = picked[first : first + block]
        offsets = rng.integers(0, sizes[chosen, None], size=(len(chosen), units))
        draws[first : first + block] = statistic(values[starts[chosen, None] + offsets])
    low, high = np.quantile(draws, [1 - policy.confidence, policy.confidence])
    return Band(
        expected=float(statistic(values)),
        low=float(low),
        high=float(high),
        confidence=policy.confidence,
        chunks=len(sizes),
        reference_units=len(values),
    )


def verdict(
    metric: Metric, value: float, units: int, band: Band, min_units: int, source: str
) -> tuple[bool, bool, str]:
    """(judged, dropped, reason): dropped when `value` lies beyond the band on its worse side;
    fewer than `min_units` units are not judged. `source` names where the band comes from."""
    interval = f"[{band.low:.3g}, {band.high:.3g}] ({band.confidence:.0%}) from {source}"
    said = f"{metric.name} {value:.3g}"
    if units < min_units:
        reason = f"{said} on only {units} {metric.unit_name} (fewer than {min_units}): not judged"
        return False, False, reason
    worse = value < band.low if metric.better == "higher" else value > band.high
    if worse:
        side = "below" if metric.better == "higher" else "above"
        return True, True, f"{said} {side} its band {interval}"
    better = value > band.high if metric.better == "higher" else value < band.low
    return True, False, f"{said} {'better than' if better else 'within'} its band {interval}"


# ---- per-unit values -------------------------------------------------------------------------
def recommender_units(
    recommender, events: pd.DataFrame, start: datetime, end: datetime, history_days: int
) -> pd.DataFrame:
    """One row per user with a target in [start, end) and a history in the `history_days`
    before `start` (`events`: curated interactions covering both): `units` (NDCG@10) and
    recall@10 of the champion's top K from that history."""
    from training.recommender.buy_again import BuyAgain
    from training.recommender.evaluate import per_user_metrics
    from training.recommender.gate import K
    from training.recommender.predict import Request

    times = events.timestamp
    window = events[(times >= start) & (times < end)]
    before = events[(times >= start - timedelta(days=history_days)) & (times < start)]
    users = sorted(set(window.user_id) & set(before.user_id))
    known = histories(before, users) if users else []
    touched = window.groupby("user_id").item_id.agg(lambda s: list(dict.fromkeys(s)))
    # the model's own buy-again setting says which history items count again (buy_again.py)
    buy_again = getattr(recommender, "buy_again", BuyAgain())
    categories = getattr(recommender, "categories", {})
    targets = [
        buy_again.targets(touched[u], seen, categories)
        for u, seen in zip(users, known, strict=True)
    ]
    kept = [n for n, target in enumerate(targets) if target]
    answers = []
    for first in range(0, len(kept), RECOMMEND_BATCH):
        block = kept[first : first + RECOMMEND_BATCH]
        answers += recommender.recommend_batch([Request(known[n], K) for n in block])
    per_user = per_user_metrics([a.item_ids for a in answers], [targets[n] for n in kept], ks=(10,))
    return pd.DataFrame(
        {
            "user_id": [users[n] for n in kept],
            UNITS: per_user["ndcg@10"],
            "recall@10": per_user["recall@10"],
        }
    )


def pricing_units(settings: Settings, pricing, sales: pd.DataFrame) -> pd.DataFrame:
    """One row per curated sales row the champion can price (its features known, its item and
    store known to the model): `units` (the squared error of log(1 + units)), `mae` (the
    absolute error) and `week_start`."""
    from training.pricing.baselines import log_units

    rows = with_pricing_features(settings, sales)
    predicted = pricing.predict(rows, unknown="drop")
    scored = rows.loc[predicted.index]
    errors = predicted.log_units.to_numpy() - log_units(scored)
    usable = ~np.isnan(errors)  # as the gate's errors
    return pd.DataFrame(
        {
            "week_start": scored.event_timestamp.to_numpy()[usable],
            UNITS: errors[usable] ** 2,
            "mae": np.abs(errors[usable]),
        }
    )


def with_pricing_features(settings: Settings, sales: pd.DataFrame) -> pd.DataFrame:
    """Curated sales rows with the `pricing_v1` features known at each week's start (the shelf
    price charged that week), as training/pricing/dataset.py joins them; rows without a shelf
    price are left out."""
    from features.store import training_set
    from training.pricing.dataset import FEATURE_SERVICE

    rows = sales[["item_id", "store_id", "units"]].assign(
        event_timestamp=pd.to_datetime(sales.week_start).dt.tz_localize(UTC)
    )
    entities = rows[["item_id", "store_id", "event_timestamp"]].drop_duplicates()
    features = training_set(settings, entities, FEATURE_SERVICE, unknown="allow")
    features["event_timestamp"] = pd.to_datetime(features["event_timestamp"], utc=True)
    frame = rows.merge(features, on=["item_id", "store_id", "event_timestamp"], how="left")
    return frame[frame["price"].notna()].reset_index(drop=True)


# ---- the check -------------------------------------------------------------------------------
@dataclass
class Evaluation:
    """What the check needs of one model: the settings, the champion and a lazily loaded copy."""

    model: str
    settings: Settings
    champion: str
    dataset: str
    _loaded: Any = None

    @property
    def loaded(self):
        if self._loaded is None:
            if self.model == "recommender":
                from training.recommender.registry import load_recommender as load
            else:
                from training.pricing.registry import load_pricing as load
            self._loaded = load(f"models:/{self.model}/{self.champion}")
        return self._loaded

    def read(self, start: datetime, end: datetime) -> pd.DataFrame:
        """The curated rows that units in [start, end) need (for the recommender, with the
        histories before)."""
        table = model_stages(self.model).table
        if self.model == "recommender":
            start -= timedelta(days=self.settings.performance.history_days)
        return read_curated(self.settings, self.dataset, table, start, end)

    def units(self, rows: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
        """The per-unit values of [start, end), from `rows` as `read` gives them."""
        if self.within(rows, start, end).empty:
            return self.no_units()
        if self.model == "recommender":
            history_days = self.settings.performance.history_days
            return recommender_units(self.loaded, rows, start, end, history_days)
        return pricing_units(self.settings, self.loaded, self.within(rows, start, end))

    def within(self, rows: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
        """The rows whose time (an interaction's, a sales week's start) lies in [start, end)."""
        if rows.empty:
            return rows
        times = pd.to_datetime(rows[model_stages(self.model).time_column])
        times = times if times.dt.tz is not None else times.dt.tz_localize(UTC)
        return rows[(times >= start) & (times < end)]

    def no_units(self) -> pd.DataFrame:
        return pd.DataFrame(columns=[UNITS, *METRICS[self.model].secondary], dtype=np.float64)


def realised_performance(
    model: str,
    start: When,
    end: When,
    settings: Settings | None = None,
    champion: str | None = None,
) -> dict[str, Any] | None:
    """The champion's metric on [start, end) and whether it dropped below the band of its own
    test window; None when `model` has no champion (`champion`: its version, else looked up)."""
    from training.gate import champion_version
    from training.tracking import use_tracking

    settings = settings or get_settings()
    stages = model_stages(model)  # an unknown model is a ValueError naming the known ones
    metric = METRICS[model]
    start, end = as_utc(start), as_utc(end)
    if end <= start:
        raise ValueError(f"the interval [{start}, {end}) is empty")
    use_tracking(settings, f"drift-{model}")
    champion = champion or champion_version(model)
    if champion is None:
        return None
    dataset = curated_dataset(settings, stages.table)
    evaluation = Evaluation(model, settings, str(champion), dataset)
    record: dict[str, Any] = {
        "model": model,
        "metric": metric.name,
        "better": metric.better,
        "interval": {"start": start.isoformat(), "end": end.isoformat()},
        "champion_version": evaluation.champion,
        "value": None,
        "units": 0,
        "secondary": {},
        "band": None,
        "judged": False,
        "dropped": False,
    }
    rows = evaluation.read(start, end)
    units = evaluation.units(rows, start, end)
    if units.empty:
        empty = evaluation.within(rows, start, end).empty
        what = f"no curated {dataset} {stages.table}" if empty else f"no {metric.unit_name}"
        return {**record, "reason": f"{what} to evaluate version {champion} on in the interval"}
    value = float(metric.statistic(units[UNITS].to_numpy(dtype=np.float64)))
    record |= {
        "value": round(value, 6),
        "units": len(units),
        "secondary": {name: round(float(units[name].mean()), 6) for name in metric.secondary},
    }
    reference, window, trouble = band_units(evaluation, end - start)
    if trouble is not None:
        return {**record, "reason": f"{metric.name} {value:.3g}: not judged, {trouble}"}
    band = bootstrap_band(
        reference[UNITS].to_numpy(), reference.chunk.to_numpy(), len(units),
        metric.statistic, settings.performance,
    )  # fmt: skip
    source = f"version {champion}'s test window"
    judged, dropped, reason = verdict(
        metric, value, len(units), band, settings.performance.min_units, source
    )
    band_record = band.to_dict() | {"window": {k: v.isoformat() for k, v in window.items()}}
    log.log(logging.WARNING if dropped else logging.INFO, "%s performance: %s", model, reason)
    return {**record, "band": band_record, "judged": judged, "dropped": dropped, "reason": reason}


def band_units(
    evaluation: Evaluation, length: timedelta
) -> tuple[pd.DataFrame, dict[str, datetime], str | None]:
    """The per-unit values of the champion's test window, cut back from its data end into
    chunks of `length` (column `chunk`), its window, and what stops a band when something does.
    Read from the cache when it was computed for the same window and settings."""
    from training.tracking import data_end as tagged_data_end

    data_end = tagged_data_end(evaluation.model, evaluation.champion)
    if data_end is None:
        return pd.DataFrame(), {}, f"version {evaluation.champion} has no data_interval_end tag"
    span = held_out_span(evaluation.model, evaluation.settings)
    count = span // length
    if count == 0:
        return pd.DataFrame(), {}, f"the interval is longer than the test window ({span.days} days)"
    window = {"start": data_end - count * length, "end": data_end}
    path = band_path(evaluation, length)
    identity = {
        "window": {k: v.isoformat() for k, v in window.items()},
        "history_days": evaluation.settings.performance.history_days,
        "dataset": evaluation.dataset,
    }
    units = cached_units(path, identity)
    if units is None:
        units = chunked_units(evaluation, window["start"], length, count)
        write_band_units(units, identity, path)
    if units.empty:
        return units, window, f"no {METRICS[evaluation.model].unit_name} in the test window"
    return units, window, None


def chunked_units(
    evaluation: Evaluation, start: datetime, length: timedelta, count: int
) -> pd.DataFrame:
    """Each chunk [start + n x length, start + (n + 1) x length) evaluated as an interval."""
    rows = evaluation.read(start, start + count * length)
    parts = []
    for n in range(count):
        chunk_start = start + n * length
        units = evaluation.units(rows, chunk_start, chunk_start + length)
        parts.append(units[[UNITS, *METRICS[evaluation.model].secondary]].assign(chunk=n))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def held_out_span(model: str, settings: Settings) -> timedelta:
    if model == "recommender":
        return timedelta(days=settings.recommender_test_days)
    return timedelta(weeks=settings.pricing_test_weeks)


def band_path(evaluation: Evaluation, length: timedelta) -> Path:
    seconds = int(length.total_seconds())
    folder = monitoring_dir(evaluation.settings, evaluation.model) / "bands"
    return folder / f"v{evaluation.champion}_{seconds}s.parquet"


def cached_units(path: Path, identity: dict[str, Any]) -> pd.DataFrame | None:
    """The cached per-unit values, or None when absent or computed for another window."""
    from training.training_sets import read_training_set  # a frame and its metadata

    if not path.exists():
        return None
    frame, metadata = read_training_set(path)
    return frame if metadata == identity else None


def write_band_units(units: pd.DataFrame, identity: dict[str, Any], path: Path) -> None:
    from training.training_sets import write_training_set  # a frame and its metadata

    write_training_set(units.astype({UNITS: np.float64, "chunk": np.int64}), identity, path)


def performance_text(performance: dict | None) -> str:
    """A result's metric, value and band for tables, e.g. "ndcg@10 0.0374 [0.0393, 0.2140]";
    empty when there is none."""
    if not performance or performance.get("value") is None:
        return ""
    band = performance.get("band") or {}
    text = f"{performance['metric']} {performance['value']:.4f}"
    return text + (f" [{band['low']:.4f}, {band['high']:.4f}]" if band else "")
