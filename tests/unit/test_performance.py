"""The performance check (monitoring.performance): the two-stage bootstrap band has the spread
theory gives it, an interval like the test window is inside it about `confidence` of the time
and a worse one is caught, each metric's better side is respected, too few units are not
judged, and the recommender's per-user values are protocol B's targets scored by the gate's
formulas. The end to end run (a registered champion, its tag, the cache) is the drift monitor
DAG's test: registering a model costs more than this whole module."""

from __future__ import annotations

import random
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from core.settings import PerformancePolicy
from monitoring.performance import (
    METRICS,
    UNITS,
    Band,
    bootstrap_band,
    cached_units,
    recommender_units,
    verdict,
    write_band_units,
)
from training.recommender.evaluate import list_metrics, per_user_metrics

RECOMMENDER, PRICING = METRICS["recommender"], METRICS["pricing"]


def chunked_normal(rng, chunks: int, per_chunk: int, mean: float = 0.3, sd: float = 1.0):
    values = rng.normal(mean, sd, chunks * per_chunk)
    return values, np.repeat(np.arange(chunks), per_chunk)


def mixture_quantile(values: np.ndarray, chunks: np.ndarray, units: int, q: float) -> float:
    """The q quantile of the two-stage bootstrap's mean in theory: a chunk picked uniformly,
    then the mean of `units` draws from it, normal (CLT) around the chunk's mean with the
    chunk's variance over `units`: a uniform mixture of one normal per chunk."""
    groups = [values[chunks == c] for c in np.unique(chunks)]
    means = np.array([g.mean() for g in groups])
    errors = np.array([g.std() for g in groups]) / np.sqrt(units)  # ddof 0: the resampled set

    def cdf(x: float) -> float:
        return float(norm.cdf((x - means) / errors).mean()) - q

    return brentq(cdf, values.min(), values.max())


def test_the_band_has_the_spread_of_the_two_stage_bootstrap_in_theory():
    rng = np.random.default_rng(1)
    values, chunks = chunked_normal(rng, chunks=28, per_chunk=400)
    units, rounds = 100, 20_000
    policy = PerformancePolicy(confidence=0.99, bootstrap_rounds=rounds, seed=3)
    band = bootstrap_band(values, chunks, units, RECOMMENDER.statistic, policy)
    assert band.expected == pytest.approx(values.mean())
    assert (band.chunks, band.reference_units) == (28, len(values))
    # The Monte Carlo error of a 1% quantile of R draws is sqrt(p (1 - p) / R) / density:
    # 0.026 standard deviations of the statistic at R = 20 000; allow four times that.
    spread = np.sqrt(1 / units + 1 / 400)  # the statistic's sd: within and between chunks
    for q, found in ((0.01, band.low), (0.99, band.high)):
        assert found == pytest.approx(mixture_quantile(values, chunks, units, q), abs=0.1 * spread)
    # one chunk: the textbook standard error of a mean, sd / sqrt(n)
    one = bootstrap_band(values, np.zeros_like(chunks), units, RECOMMENDER.statistic, policy)
    half_width = norm.ppf(0.99) * values.std() / np.sqrt(units)
    assert one.high - one.expected == pytest.approx(half_width, rel=0.05)
    assert one.expected - one.low == pytest.approx(half_width, rel=0.05)


def test_each_draw_comes_from_one_chunk_and_the_band_is_reproducible():
    values = np.r_[np.zeros(50), np.ones(150)]  # chunk 0 all zeros, chunk 1 all ones
    chunks = np.r_[np.zeros(50, int), np.ones(150, int)]
    policy = PerformancePolicy(confidence=0.9, bootstrap_rounds=500, seed=7)
    band = bootstrap_band(values, chunks, 30, RECOMMENDER.statistic, policy)
    # a draw mixing chunks would land strictly between 0 and 1; the chunks are picked uniformly
    # (about half the draws each), not by their size
    assert (band.low, band.high) == (0.0, 1.0)
    assert band.expected == pytest.approx(0.75)
    shuffled = np.random.default_rng(0).permutation(len(values))
    again = bootstrap_band(values[shuffled], chunks[shuffled], 30, RECOMMENDER.statistic, policy)
    assert again == band


@pytest.mark.parametrize("metric", [RECOMMENDER, PRICING], ids=lambda m: m.name)
def test_an_interval_like_the_test_window_is_inside_its_band_at_the_confidence(metric):
    """Per-unit values from one distribution (NDCG-like values; squared normal errors for the
    RMSE): across seeds, an interval is judged a drop about 1 - confidence of the time (one
    sided). Chunks of 20 x the interval's units: the chunk-to-chunk part of the band widens it
    by sqrt(1 + 1/20), about 2.5 %, so the rate sits a little under 10 %; 400 trials have a
    binomial standard error of 1.5 points."""
    confidence, units, trials = 0.9, 50, 400
    policy = PerformancePolicy(confidence=confidence, bootstrap_rounds=500, min_units=units)
    dropped = 0
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        reference, chunks = chunked_normal(rng, chunks=10, per_chunk=20 * units)
        interval = rng.normal(0.3, 1.0, units)
        if metric is PRICING:
            reference, interval = reference**2, interval**2
        band = bootstrap_band(
            reference, chunks, units, metric.statistic, policy.model_copy(update={"seed": seed})
        )
        value = float(metric.statistic(interval))
        dropped += verdict(metric, value, units, band, policy.min_units, "test")[1]
    assert 0.05 <= dropped / trials <= 0.14


def test_a_worse_interval_is_caught_and_a_better_one_is_not():
    rng = np.random.default_rng(5)
    policy = PerformancePolicy()  # the defaults: 99 %, 1000 rounds
    units = 200
    ndcg, chunks = chunked_normal(rng, chunks=28, per_chunk=400, mean=0.3, sd=0.2)
    band = bootstrap_band(ndcg, chunks, units, RECOMMENDER.statistic, policy)
    for shift in (-0.1, +0.1):  # half a unit sd: seven standard errors of a 200-unit mean
        value = float(np.mean(rng.normal(0.3 + shift, 0.2, units)))
        judged, dropped, reason = verdict(RECOMMENDER, value, units, band, 30, "version 3's")
        assert judged and dropped == (shift < 0)
        assert ("below its band" if shift < 0 else "better than its band") in reason
        assert "(99%) from version 3's" in reason

    errors, chunks = chunked_normal(rng, chunks=8, per_chunk=400, mean=0.0, sd=0.5)
    band = bootstrap_band(errors**2, chunks, units, PRICING.statistic, policy)
    assert band.expected == pytest.approx(np.sqrt(np.mean(errors**2)))
    for scale in (1.5, 0.5):  # a higher RMSE is the worse one
        value = float(PRICING.statistic((scale * rng.normal(0.0, 0.5, units)) ** 2))
        judged, dropped, reason = verdict(PRICING, value, units, band, 30, "version 3's")
        assert judged and dropped == (scale > 1)
        assert ("above its band" if scale > 1 else "better than its band") in reason


def test_too_few_units_are_reported_not_judged():
    band = Band(expected=0.3, low=0.25, high=0.35, confidence=0.99, chunks=28, reference_units=9)
    judged, dropped, reason = verdict(RECOMMENDER, 0.01, 29, band, 30, "version 1's")
    assert (judged, dropped) == (False, False)
    assert "only 29 users (fewer than 30): not judged" in reason
    assert verdict(RECOMMENDER, 0.01, 30, band, 30, "version 1's")[:2] == (True, True)
    assert verdict(RECOMMENDER, 0.30, 30, band, 30, "version 1's")[:2] == (True, False)


def test_per_user_metrics_average_to_list_metrics():
    rng = random.Random(0)
    items = [f"i{n}" for n in range(60)]
    recommended = [rng.sample(items, rng.randint(0, 25)) for _ in range(40)]
    targets = [rng.sample(items, rng.randint(0, 12)) for _ in range(40)]
    per_user = per_user_metrics(recommended, targets)
    assert {len(v) for v in per_user.values()} == {sum(1 for t in targets if t)}
    assert {k: float(np.mean(v)) for k, v in per_user.items()} == list_metrics(recommended, targets)
    # by hand: targets at ranks 1 and 3 of two, a miss, a user without targets skipped
    one = per_user_metrics([["a", "x", "b"], ["x"], ["a"]], [["a", "b"], ["y"], []], ks=(10,))
    ideal = 1 + 1 / np.log2(3)
    assert one["ndcg@10"] == pytest.approx([(1 + 1 / np.log2(4)) / ideal, 0.0])
    assert one["recall@10"] == pytest.approx([1.0, 0.0])


@pytest.fixture(scope="module")
def recommender():
    import scipy.sparse as sp

    from training.recommender.factors import FactorConfig, FactorRecommender

    rng = np.random.default_rng(0)
    touched = sp.csr_matrix((rng.random((300, 40)) < 0.1).astype(np.float64))
    return FactorRecommender.fit(touched, [f"i{n}" for n in range(40)], FactorConfig(rank=8))


def test_recommender_units_are_protocol_b_users_scored_as_the_gate_scores(recommender):
    start = pd.Timestamp("2024-03-01", tz="UTC")
    end = start + timedelta(days=1)
    day = pd.Timedelta(days=1)
    events = pd.DataFrame(
        [
            ("u1", "i1", start - 10 * day),
            ("u1", "i2", start - 5 * day),
            ("u1", "i2", start + pd.Timedelta(hours=1)),  # in the history: not a target
            ("u1", "i3", start + pd.Timedelta(hours=2)),
            ("u1", "i4", start + pd.Timedelta(hours=3)),
            ("u1", "i3", start + pd.Timedelta(hours=4)),  # a target once
            ("u2", "i5", start - 100 * day),  # before the 90 history days
            ("u2", "i6", start - day),
            ("u2", "i5", start + pd.Timedelta(hours=5)),  # so a target again
            ("u3", "i7", start - 2 * day),
            ("u3", "i7", start + pd.Timedelta(hours=6)),  # only what they had: no target
            ("u4", "i8", start + pd.Timedelta(hours=7)),  # no history: not a unit
            ("u5", "i9", start - 3 * day),
            ("u5", "i11", start),
            ("u5", "i10", end),  # after the interval
        ],
        columns=["user_id", "item_id", "timestamp"],
    )
    units = recommender_units(recommender, events, start, end, history_days=90)
    assert units.user_id.tolist() == ["u1", "u2", "u5"]
    histories, targets = [["i2", "i1"], ["i6"], ["i9"]], [["i3", "i4"], ["i5"], ["i11"]]
    from training.recommender.predict import Request

    answers = recommender.recommend_batch([Request(h, 20) for h in histories])
    expected = list_metrics([a.item_ids for a in answers], targets, ks=(10,))
    assert units[UNITS].mean() == pytest.approx(expected["ndcg@10"])
    assert units["recall@10"].mean() == pytest.approx(expected["recall@10"])
    later = recommender_units(recommender, events, end, end + day, 90)  # i10, at `end`
    assert later.user_id.tolist() == ["u5"]
    assert recommender_units(recommender, events, end + day, end + 2 * day, 90).empty


def test_the_band_cache_is_kept_for_its_window_only(tmp_path):
    path = tmp_path / "bands" / "v3_86400s.parquet"
    identity = {"window": {"start": "a", "end": "b"}, "history_days": 90, "dataset": "shop"}
    units = pd.DataFrame({UNITS: [0.1, 0.2], "recall@10": [0.3, 0.4], "chunk": [0, 1]})
    assert cached_units(path, identity) is None
    write_band_units(units, identity, path)
    pd.testing.assert_frame_equal(cached_units(path, identity), units)
    assert cached_units(path, {**identity, "history_days": 30}) is None
