"""The drift check (monitoring.drift): a shifted column or volume is flagged, a clean window is
not, per-column methods and thresholds come from config, and the reports are written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.settings import DriftPolicy
from monitoring.drift import check_drift, write_report
from monitoring.frames import interaction_frame, split_reference

NUM, CAT = ["price_ratio", "item_popularity"], ["category", "event_type"]


def window(days: int, per_day: int, seed: int, shift: float = 0.0, mix=(0.5, 0.3, 0.2)):
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01", tz="UTC")
    n = days * per_day
    return pd.DataFrame(
        {
            "timestamp": start + pd.to_timedelta(rng.integers(0, days * 86_400, n), unit="s"),
            "price_ratio": rng.normal(1.0 + shift, 0.1, n),
            "item_popularity": rng.exponential(3.0, n),
            "category": rng.choice(["a", "b", "c"], n, p=list(mix)),
            "event_type": rng.choice(["view", "purchase"], n, p=[0.9, 0.1]),
        }
    )


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return window(28, 2000, seed=0)


def one_day(frame: pd.DataFrame, day: str = "2024-02-05") -> pd.DataFrame:
    return frame.assign(timestamp=pd.Timestamp(day, tz="UTC"))


def test_a_clean_window_is_not_flagged(reference):
    result, _ = check_drift(
        one_day(window(1, 2000, seed=1)), reference, NUM, CAT, DriftPolicy(), "timestamp"
    )
    assert not result.drift, result.to_dict()
    assert result.volume_ratio == pytest.approx(1.0, abs=0.05)  # 2000 rows, ~2000 expected


@pytest.mark.parametrize(
    ("kwargs", "column"),
    [({"shift": 0.05}, "price_ratio"), ({"mix": (0.2, 0.3, 0.5)}, "category")],
)
def test_a_shifted_column_is_flagged(reference, kwargs, column):
    result, _ = check_drift(
        one_day(window(1, 2000, seed=2, **kwargs)), reference, NUM, CAT, DriftPolicy(), "timestamp"
    )
    assert result.drift and result.drifted_columns == [column]


def test_volume_against_the_same_weekday(reference):
    busy = one_day(window(1, 2800, seed=3))  # 40 % more rows than the reference's days
    result, _ = check_drift(busy, reference, NUM, CAT, DriftPolicy(), "timestamp")
    assert result.volume_drifted and result.drift
    assert result.volume_ratio == pytest.approx(1.4, abs=0.1)
    assert not result.drifted_columns


def test_methods_and_thresholds_come_from_config(reference):
    policy = DriftPolicy(
        per_column_method={"price_ratio": "psi"}, per_column_threshold={"category": 0.5}
    )
    shifted = one_day(window(1, 2000, seed=4, mix=(0.2, 0.3, 0.5)))
    result, _ = check_drift(shifted, reference, NUM, CAT, policy, "timestamp")
    by_column = {c.column: c for c in result.columns}
    assert by_column["price_ratio"].method == "psi"
    assert by_column["category"].threshold == 0.5 and not by_column["category"].drifted
    assert by_column["item_popularity"].method == "wasserstein"


def test_a_column_without_values_is_noted_not_compared(reference):
    current = one_day(window(1, 2000, seed=5)).assign(price_ratio=np.nan)
    result, _ = check_drift(current, reference, NUM, CAT, DriftPolicy(), "timestamp")
    assert "price_ratio" not in {c.column for c in result.columns}
    assert any("price_ratio" in note for note in result.notes)


def test_reports_are_written(reference, tmp_path):
    result, snapshot = check_drift(
        one_day(window(1, 2000, seed=6, shift=0.1)), reference, NUM, CAT, DriftPolicy()
    )
    paths = write_report(result, snapshot, tmp_path / "r", {"model": "recommender"})
    assert "<html" in Path(paths["html"]).read_text()[:2000].lower()
    record = json.loads(Path(paths["json"]).read_text())
    assert record["model"] == "recommender" and record["drifted_columns"] == ["price_ratio"]


def test_frames_are_described_against_an_anchor():
    events = pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=8, freq="D", tz="UTC"),
            "item_id": ["a", "a", "b", "b", "a", "b", "c", "a"],
            "event_type": ["view"] * 8,
            "price": [10.0, 10.0, 5.0, 5.0, 12.0, 5.0, 3.0, 10.0],
        }
    )
    anchor, sample = split_reference(events, "timestamp")
    assert anchor.timestamp.max() < sample.timestamp.min()
    frame = interaction_frame(events.iloc[-2:], anchor, {"a": "x", "c": "y"})
    assert frame.category.tolist() == ["y", "x"]
    assert frame.item_known.tolist() == ["no", "yes"]  # c is not in the anchor
    assert frame.price_ratio.iloc[1] == pytest.approx(1.0)  # a's anchor median price is 10
    assert np.isnan(frame.price_ratio.iloc[0])


def test_a_shift_last_year_also_saw_is_seasonal_and_one_column_of_five_weighs_a_fifth():
    from monitoring.drift import ColumnDrift, DriftResult

    def result(drifted: set[str], volume: bool) -> DriftResult:
        columns = [ColumnDrift(c, "wasserstein", 0.1, 0.3 if c in drifted else 0.01, c in drifted)
                   for c in ["price_ratio", "category", "promo", "feature", "units"]]  # fmt: skip
        return DriftResult(columns, 100, 100.0, volume, min_drifted_share=0.3)

    recent = result({"price_ratio", "category"}, volume=True)
    assert recent.share_drifted == pytest.approx(0.4) and recent.drift
    recent.explain_by_season(result({"category"}, volume=False))  # the same weeks last year
    assert recent.drifted_columns == ["category"] and recent.seasonal == ["price_ratio", "volume"]
    assert recent.share_drifted == pytest.approx(0.2) and not recent.drift  # below 0.3
    weighed = result({"promo"}, volume=False)
    weighed.weights = {"price_ratio": 0.1, "category": 0.1, "promo": 0.6, "feature": 0.1,
                       "units": 0.1}  # fmt: skip
    assert weighed.share_drifted == pytest.approx(0.6) and weighed.drift
