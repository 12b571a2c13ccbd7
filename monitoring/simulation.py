"""Drift detection on the shop simulator: how often the check fires on shifted and on clean
windows, and how many windows after a shift it first fires.

Protocol, per seed and per knob (taste shift, price shock, seasonality, new items):
* two shops from the same seed: one with every knob off (clean), one with the knob on from the
  first day after the reference (seasonality: an annual wave over the whole span);
* the reference is the first `REFERENCE_DAYS` days (the model's training window), fixed: its
  first three quarters anchor the per-item statistics, its last quarter is the sample compared;
* a window is one day of interactions, checked against the reference (monitoring.drift, with
  the configured methods, and thresholds calibrated on the ten days before the reference end,
  each against the days before it, as the live check calibrates: monitoring.calibration);
* clean windows: the clean shop's days after the reference; shifted windows: the knob shop's
  days after its shift date (the price shock's first effective week). For seasonality a day
  counts as shifted when its true seasonal factor is at least `SEASON_EFFECT` away from the
  reference's mean factor; days with a smaller effect are left out of both rates;
* detection = share of shifted windows flagged; false alarms = share of clean windows flagged;
  delay = days from the shift to the first flag.

The knob sizes below are the "known size" of each injected shift.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd

from core.settings import DriftPolicy

from .calibration import calibrate_columns, scores_of
from .frames import INTERACTION_CATEGORICAL, INTERACTION_NUMERICAL

KNOBS = ("taste_shift", "price_shock", "seasonality", "new_items")
START = date(2024, 1, 1)
REFERENCE_DAYS = 28
SHIFT_AT = START + timedelta(days=REFERENCE_DAYS)
SEASON_EFFECT = 0.25
EVENTS_PER_DAY = 3_000
KNOB_SETTINGS = {
    "taste_shift": {"taste_shift_at": SHIFT_AT, "taste_shift_strength": 0.5},
    "price_shock": {"price_shock_at": SHIFT_AT, "price_shock_pct": 0.2, "price_shock_share": 0.3},
    "seasonality": {"seasonality_amplitude": 0.2},
    "new_items": {"new_items_at": SHIFT_AT, "new_items": 100},
}


@dataclass
class KnobScore:
    knob: str
    shifted: int = 0
    detected: int = 0
    clean: int = 0
    false_alarms: int = 0
    delays: list[int] = field(default_factory=list)
    columns: Counter = field(default_factory=Counter)  # which columns fired on shifted windows

    @property
    def detection_rate(self) -> float:
        return self.detected / self.shifted if self.shifted else float("nan")

    @property
    def false_alarm_rate(self) -> float:
        return self.false_alarms / self.clean if self.clean else float("nan")

    def to_dict(self) -> dict:
        return {
            "knob": self.knob,
            "shifted_windows": self.shifted,
            "detected": self.detected,
            "detection_rate": round(self.detection_rate, 4),
            "clean_windows": self.clean,
            "false_alarms": self.false_alarms,
            "false_alarm_rate": round(self.false_alarm_rate, 4),
            "delay_days": self.delays,
            "mean_delay_days": float(np.mean(self.delays)) if self.delays else None,
            "columns_fired": dict(self.columns),
        }


def detection_table(
    seeds: list[int], windows: int, policy: DriftPolicy, on_window=None
) -> dict[str, KnobScore]:
    """Scores per knob over `seeds`, `windows` clean and (up to) `windows` shifted days each."""
    scores = {knob: KnobScore(knob) for knob in KNOBS}
    for seed in seeds:
        clean = _flags(seed, None, windows, policy, on_window)
        for knob in KNOBS:
            score = scores[knob]
            score.clean += len(clean)
            score.false_alarms += sum(f.drift for _, f in clean)
            shifted = _flags(seed, knob, windows, policy, on_window)
            score.shifted += len(shifted)
            score.detected += sum(f.drift for _, f in shifted)
            for _, flag in shifted:
                if flag.drift:
                    score.columns.update(flag.drifted_columns or ["volume"])
            first = next((day for day, f in shifted if f.drift), None)
            if first is not None and shifted:
                score.delays.append((first - shifted[0][0]).days)
    return scores


def _flags(seed, knob, windows, policy, on_window) -> list[tuple[date, object]]:
    """Each window day's check against the fixed reference, with the thresholds calibrated on
    the days before the reference end, as the live check calibrates them (monitor.py)."""
    from .monitor import compare_frames

    shop = _shop(seed, knob, windows)
    events, categories = shop["events"], shop["categories"]

    def rows(start, end) -> pd.DataFrame:
        return events[(events.timestamp >= start) & (events.timestamp < end)]

    def score(start, end) -> dict[str, float] | None:
        window, past = (
            rows(start, end),
            rows(start - pd.Timedelta(days=policy.reference_days), start),
        )
        if window.empty or past.empty:
            return None
        return scores_of(compare_frames("recommender", window, past, categories, policy).result)

    start = pd.Timestamp(START, tz="UTC")
    reference_end = start + pd.Timedelta(days=REFERENCE_DAYS)
    calibration = calibrate_columns(policy, (INTERACTION_NUMERICAL, INTERACTION_CATEGORICAL),
                                    True, reference_end, pd.Timedelta(days=1), score)  # fmt: skip
    reference = rows(start, reference_end)
    out = []
    for day in _window_days(shop, knob, windows):
        when = pd.Timestamp(day, tz="UTC")
        window = rows(when, when + pd.Timedelta(days=1))
        result = compare_frames(
            "recommender", window, reference, categories, policy, calibration.thresholds
        ).result
        out.append((day, result))
        if on_window is not None:
            on_window(knob or "clean", day, result)
    return out


def _window_days(shop: dict, knob: str | None, windows: int) -> list[date]:
    first = SHIFT_AT
    if knob == "price_shock":
        first = pd.Timestamp(shop["drift"]["price_shock"]["effective_week"]).date()
    candidates = [first + timedelta(days=n) for n in range(_span(windows) - (first - START).days)]
    if knob == "seasonality":
        factor = {d: _season(d, 0.2) for d in candidates}
        reference = np.mean(
            [_season(START + timedelta(days=n), 0.2) for n in range(REFERENCE_DAYS)]
        )
        candidates = [d for d in candidates if abs(factor[d] / reference - 1) >= SEASON_EFFECT]
    return candidates[:windows]


def _season(day: date, amplitude: float) -> float:
    """The simulator's seasonal factor (features/sources/simulator/world.py, World.season)."""
    from features.sources.simulator import SEASON_PEAK_DAY

    year_day = day.timetuple().tm_yday - 1
    return 1 + amplitude * np.cos(2 * np.pi * (year_day - SEASON_PEAK_DAY) / 365.25)


def _span(windows: int) -> int:
    """Days to simulate: the reference, the windows, and room for the seasonal wave to grow."""
    return REFERENCE_DAYS + windows + 70


@lru_cache(maxsize=2)
def _shop(seed: int, knob: str | None, windows: int) -> dict:
    from features.sources.simulator import DriftConfig, SimulatorConfig, simulate

    days = _span(windows)
    config = SimulatorConfig(
        seed=seed,
        events=EVENTS_PER_DAY * days,
        users=5_000,
        items=2_000,
        stores=2,
        start=START,
        days=days,
        drift=DriftConfig(**(KNOB_SETTINGS[knob] if knob else {})),
    )
    shop = simulate(config)
    events = shop.interactions.copy()
    events["timestamp"] = pd.to_datetime(events.timestamp, utc=True)
    categories = dict(zip(shop.items.item_id, shop.items.category, strict=True))
    return {"events": events, "categories": categories, "drift": shop.truth["drift"]}
