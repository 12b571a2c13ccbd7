"""Calibrated drift thresholds (monitoring.calibration): a column's threshold sits above its
own variability on the shop's history, never below the configured one; p-values are calibrated
on their own scale; one drifted chunk does not lift the threshold over itself; a young shop
keeps the configured thresholds; a chunk's scores are kept and reused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from core.settings import DriftPolicy
from monitoring.calibration import calibrate, chunk_windows, scored_chunks

POLICY = DriftPolicy()  # 3 spreads, at least 4 chunks


def test_a_noisy_column_gets_a_threshold_above_its_own_spread():
    rng = np.random.default_rng(1)
    chunks = [{"price_ratio": s} for s in rng.normal(0.3, 0.05, 10)]
    found = calibrate(chunks, {"price_ratio": "wasserstein"}, {"price_ratio": 0.15}, POLICY)
    band = found.bands["price_ratio"]
    assert found.note is None and band.chunks == 10
    assert found.thresholds["price_ratio"] == pytest.approx(band.mean + 3 * band.std)
    # mean and sd of nine of ten draws (the highest left out): near the true 0.3 and 0.05
    assert band.mean == pytest.approx(0.3, abs=0.05) and band.std == pytest.approx(0.05, rel=0.6)
    assert found.thresholds["price_ratio"] > max(s["price_ratio"] for s in chunks)


def test_a_quiet_column_keeps_its_configured_threshold():
    chunks = [{"category": 0.01 + 0.001 * n} for n in range(10)]
    found = calibrate(chunks, {"category": "jensenshannon"}, {"category": 0.1}, POLICY)
    assert found.thresholds["category"] == 0.1  # the floor: the smallest change worth an alarm


def test_p_values_are_calibrated_on_their_own_scale():
    # a KS test on big windows says p ~ 1e-6 every week on this shop
    chunks = [{"f": 10.0**-e} for e in (5, 5.5, 6, 6, 6.5, 6, 5.8, 6.2)]
    found = calibrate(chunks, {"f": "ks"}, {"f": 0.05}, POLICY)
    threshold = found.thresholds["f"]
    assert threshold < min(s["f"] for s in chunks)  # drift only well below the usual p
    assert threshold < 0.05  # never laxer than the configured 0.05 either


def test_one_drifted_chunk_does_not_lift_the_threshold_over_itself():
    chunks = [{"category": 0.2 + 0.01 * n} for n in range(9)] + [{"category": 0.9}]
    found = calibrate(chunks, {"category": "jensenshannon"}, {"category": 0.1}, POLICY)
    assert found.thresholds["category"] < 0.9
    mean_plus_3sd = np.mean([c["category"] for c in chunks]) + 3 * np.std(
        [c["category"] for c in chunks], ddof=1
    )
    assert mean_plus_3sd > 0.9  # what NannyML's mean + 3 sd would have said


def test_a_young_shop_keeps_the_configured_thresholds():
    found = calibrate([{"f": 0.5}] * 3, {"f": "wasserstein"}, {"f": 0.1}, POLICY)
    assert found.thresholds == {"f": 0.1} and found.bands == {}
    assert "3 calibration chunks (of 4 needed)" in found.note


def test_chunks_end_at_the_reference_end_and_are_scored_once(tmp_path):
    end = datetime(2024, 3, 1, tzinfo=UTC)
    windows = chunk_windows(end, timedelta(days=7), 3)
    assert windows[-1] == (end - timedelta(days=7), end)
    assert windows[0][0] == end - timedelta(days=21)
    calls = []

    def score(start, stop):
        calls.append(start)
        return None if start == windows[0][0] else {"f": 0.1}  # the oldest: nothing to compare

    key = {"reference_days": 28}
    first = scored_chunks(tmp_path, windows, key, score)
    again = scored_chunks(tmp_path, windows, key, score)
    assert len(first) == 2 and again == first and len(calls) == 3  # the second read the files
    scored_chunks(tmp_path, windows, {"reference_days": 14}, score)
    assert len(calls) == 6  # another reference: scored afresh
    kept = json.loads(next(tmp_path.glob("*_168h.json")).read_text())
    assert kept["key"] == {"reference_days": 14}
