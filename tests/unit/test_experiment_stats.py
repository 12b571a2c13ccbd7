"""The statistics of online experiments (monitoring.experiment_stats): cumulative per-look
statistics, spotify-confidence's sequential CUPED test read per look, SRM, and the decision.

Random streams use fixed seeds, so every assertion is deterministic; each comment says why the
assertion would also hold for almost any other seed (the a-priori chance it fails)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.experiment_stats import (
    Decision,
    Design,
    _library_difference,
    analyse,
    decide,
    look_statistics,
    run_looks,
    sample_ratio_p,
)

T0 = pd.Timestamp("2026-12-01", tz="UTC")
DAY = pd.Timedelta(days=1)


def stream(n=800, days=4, effect=0.0, share=0.5, seed=0, pre_noise=None):
    """Units arrive uniformly over `days`; each has two exposures (at arrival and before the end)
    that split its value base + effect * treated + noise; `pre` = base + pre_noise * noise."""
    rng = np.random.default_rng(seed)
    arrive = rng.uniform(0, days, n)
    treated = rng.random(n) < share
    base = rng.normal(10.0, 2.0, n)
    value = base + effect * treated + rng.normal(0.0, 1.0, n)
    second = arrive + rng.uniform(0, 1, n) * (days - arrive)
    unit = np.tile(np.arange(n), 2)
    outcomes = pd.DataFrame(
        {
            "unit": [f"u{u}" for u in unit],
            "arm": np.where(treated[unit], "treatment", "control"),
            "at": T0 + pd.to_timedelta(np.concatenate([arrive, second]) * 86_400, unit="s"),
            "profit": np.concatenate([value, value]) / 2,
        }
    )
    looks = [T0 + (d + 1) * DAY for d in range(days)]
    noise = 0.0 if pre_noise is None else pre_noise
    pre = pd.DataFrame(
        {"unit": [f"u{u}" for u in range(n)], "pre": base + noise * rng.normal(0, 2.0, n)}
    )
    return outcomes, looks, pre


HAND_MADE = [  # unit, arm, hours after T0, value
    ("a", "control", 1, 1.0), ("a", "control", 30, 2.0), ("b", "control", 2, 5.0),
    ("c", "treatment", 3, 4.0), ("d", "treatment", 26, 1.0), ("e", "treatment", 5, 3.0),
    ("e", "treatment", 80, 9.0),  # after the last look: counts in no look
]  # fmt: skip


def test_statistics_are_cumulative_unit_sums_per_arm():
    outcomes = pd.DataFrame(HAND_MADE, columns=["unit", "arm", "at", "clicks"])
    outcomes["at"] = T0 + pd.to_timedelta(outcomes["at"], unit="h")
    covariates = pd.DataFrame({"unit": ["a", "c", "d"], "pre": [1.0, 2.0, 3.0]})  # b, e: 0
    stats = look_statistics(outcomes, [T0 + DAY, T0 + 2 * DAY], "clicks", covariates)

    got = stats.set_index(["look", "arm"])
    assert got.loc[(0, "control"), ["n", "y_sum", "y_sumsq"]].tolist() == [2, 6.0, 26.0]
    assert got.loc[(1, "control"), ["n", "y_sum", "y_sumsq", "xy_sum"]].tolist() == [
        2, 8.0, 34.0, 3.0,
    ]  # fmt: skip
    # Look 0 has c and e; look 1 adds d (x = 3): x_sum 5, x_sumsq 13, xy = 2*4 + 3*1.
    assert got.loc[(1, "treatment"), ["n", "y_sum", "x_sum", "x_sumsq", "xy_sum"]].tolist() == [
        3, 8.0, 5.0, 13.0, 11.0,
    ]  # fmt: skip
    assert stats["at"].iloc[0] == T0 + DAY


def test_a_window_values_each_unit_once_it_is_final():
    outcomes = pd.DataFrame(HAND_MADE, columns=["unit", "arm", "at", "clicks"])
    outcomes["at"] = T0 + pd.to_timedelta(outcomes["at"], unit="h")
    stats = look_statistics(outcomes, [T0 + DAY, T0 + 2 * DAY], "clicks", window=DAY)
    # Every unit enters a day after its first exposure, so none by look 0; d (first seen at 26 h)
    # not by look 1 either; a's 30 h and e's 80 h exposures fall outside their windows.
    got = stats.set_index(["look", "arm"])[["n", "y_sum", "y_sumsq"]]
    assert got.index.tolist() == [(1, "control"), (1, "treatment")]
    assert got.to_numpy().tolist() == [[2, 6.0, 26.0], [2, 7.0, 25.0]]


def test_a_look_with_fewer_than_two_units_in_an_arm_is_left_out():
    outcomes = pd.DataFrame(
        {
            "unit": ["a", "b", "c", "d"],
            "arm": ["control", "treatment", "control", "treatment"],
            "at": [T0 + pd.Timedelta(hours=h) for h in (1, 2, 30, 31)],
            "clicks": [1.0, 0.0, 1.0, 1.0],
        }
    )
    stats = look_statistics(outcomes, [T0 + DAY, T0 + 2 * DAY], "clicks")
    assert sorted(stats["look"].unique()) == [1]


def test_a_strong_effect_is_detected_and_covered():
    outcomes, looks, _ = stream(effect=1.0, seed=1)
    frame, decision = run_looks(outcomes, looks, "profit", Design(expected_units=800))
    last = frame.iloc[-1]
    # Effect 1.0 against a standard error of ~sqrt(2 * 5 / 400) = 0.16: z ~ 6, far past the
    # last boundary (~2); a 95 % interval misses the truth for ~5 % of seeds, this one covers it.
    assert last["significant"] and decision.action == "promote"
    assert last["lower"] <= 1.0 <= last["upper"]
    assert last["effect"] == pytest.approx(1.0, abs=3 * last["std_err"])
    assert last["relative_effect"] == pytest.approx(last["effect"] / last["mean_control"])
    assert (frame["significant"] == ((frame["lower"] > 0) | (frame["upper"] < 0))).all()


def test_an_a_a_stream_is_rarely_significant():
    design = Design(expected_units=800)
    # A 12-hour window makes each unit's value final when it enters: the condition under which
    # the library's unit-count information fractions are right (Design.unit_window).
    half_day = pd.Timedelta(hours=12)
    significant = [
        analyse(look_statistics(*stream(seed=seed)[:2], "profit", window=half_day), design)[
            "significant"
        ]
        for seed in range(10, 16)
    ]
    # The alpha-spending test keeps P(significant at any look) <= 5 % per A/A stream, so 2 or
    # more of 6 streams has a-priori probability <= 3.3 %.
    assert sum(s.any() for s in significant) <= 1
    assert sum(s.sum() for s in significant) <= 2


def test_the_boundary_is_stricter_than_fixed_horizon_and_looser_at_each_look():
    frame = analyse(look_statistics(*stream(seed=2)[:2], "profit"), Design(expected_units=800))
    alphas = frame["adjusted_alpha"].to_numpy()
    # Spending 0.05 * t^2 by information fraction t: the last look (t = 1) gets less than 0.05.
    assert (np.diff(alphas) > 0).all() and 0 < alphas[-1] < 0.05
    assert (frame["n_control"] + frame["n_treatment"]).iloc[-1] == 800


def test_earlier_looks_do_not_change_when_later_looks_arrive():
    # The claim that lets one library call serve all looks: the boundary at a look depends only
    # on earlier looks' information fractions while the totals stay within the plan.
    stats = look_statistics(*stream(seed=3)[:2], "profit")
    design = Design(expected_units=800)
    full = analyse(stats, design)
    early = analyse(stats[stats["look"] <= 1], design)
    cols = ["effect", "lower", "upper", "adjusted_alpha", "significant"]
    pd.testing.assert_frame_equal(full[cols].iloc[:2], early[cols])


def test_a_look_beyond_the_plan_gets_its_own_call():
    # 800 units against a plan of 600: the library rescales every fraction to the largest n, so
    # the looks within the plan must come from a call that does not see the later ones.
    stats = look_statistics(*stream(seed=4)[:2], "profit")
    design = Design(expected_units=600)
    full = analyse(stats, design)
    within = full["n_control"] + full["n_treatment"] <= 600
    assert within.any() and not within.all()
    first_over = int(np.flatnonzero(~within)[0])
    prefix = analyse(stats[stats["look"] <= first_over], design)
    cols = ["effect", "lower", "upper", "adjusted_alpha"]
    pd.testing.assert_frame_equal(full[cols].iloc[: first_over + 1], prefix[cols])
    # What a single call over all looks would have said about the first look instead.
    naive = _library_difference(stats, design)["adjusted_alpha"].iloc[0]
    assert naive < 0.9 * full["adjusted_alpha"].iloc[0]


def test_cuped_narrows_the_interval_with_a_correlated_covariate():
    outcomes, looks, pre = stream(effect=0.3, seed=5, pre_noise=0.5)
    design = Design(expected_units=800)
    plain = analyse(look_statistics(outcomes, looks, "profit"), design).iloc[-1]
    cuped = analyse(look_statistics(outcomes, looks, "profit", pre), design).iloc[-1]
    # corr(y, pre) = 4 / sqrt(5 * 5) = 0.8, so CUPED removes ~rho^2 = 64 % of the variance and
    # the interval shrinks to ~60 %; 0.45 / 0.8 leave room for sampling error at n = 800.
    assert cuped["variance_reduction"] > 0.45
    assert (cuped["upper"] - cuped["lower"]) < 0.8 * (plain["upper"] - plain["lower"])
    assert cuped["lower"] <= 0.3 <= cuped["upper"]
    assert plain["variance_reduction"] == pytest.approx(0.0, abs=1e-9)  # no covariate: none


@pytest.mark.parametrize(
    ("n_control", "n_treatment", "share", "flagged"),
    [
        (5_500, 4_500, 0.5, True),  # 45/55 of 10,000: chi2 = 100, p ~ 1e-23
        (5_000, 5_000, 0.5, False),
        (5_050, 4_950, 0.5, False),  # chi2 = 1, p = 0.32
        (5_500, 4_500, 0.45, False),  # the planned 45 % share
    ],
)
def test_sample_ratio_mismatch(n_control, n_treatment, share, flagged):
    assert (sample_ratio_p(n_control, n_treatment, share) < Design().srm_alpha) == flagged


def test_run_looks_stops_on_a_sample_ratio_mismatch():
    outcomes, looks, _ = stream(n=10_000, days=2, share=0.55, seed=6)
    frame, decision = run_looks(outcomes, looks, "profit", Design(expected_units=10_000))
    assert decision.action == "stop_srm" and frame["srm_p"].iloc[-1] < 1e-6
    assert "treatment units" in decision.reason and decision.look == frame["look"].iloc[-1]


def test_run_looks_stops_on_a_worse_guardrail():
    outcomes, looks, _ = stream(effect=1.0, seed=7)
    # Returns rise with the treatment (a guardrail where lower is better).
    outcomes["returns"] = outcomes["profit"] + 2.0 * (outcomes["arm"] == "treatment")
    design = Design(expected_units=800)
    _, decision = run_looks(
        outcomes, looks, "profit", design, guardrail_metrics=[("returns", False)]
    )
    assert decision.action == "stop_guardrail" and "returns" in decision.reason
    _, decision = run_looks(outcomes, looks, "profit", design, guardrail_metrics=["returns"])
    assert decision.action == "promote"  # the same rise is good news when higher is better


def test_run_looks_before_any_usable_look_continues():
    outcomes, looks, _ = stream(n=3, days=2, seed=8)
    frame, decision = run_looks(outcomes, looks, "profit", Design())
    assert frame.empty and decision == Decision("continue", decision.reason, None)


def test_a_look_where_nothing_varies_yet_says_nothing():
    outcomes = pd.DataFrame(
        {
            "unit": list("abcdefgh"),
            "arm": ["control", "treatment"] * 4,
            "at": [T0 + pd.Timedelta(hours=h) for h in (1, 2, 3, 4, 30, 31, 32, 33)],
            "clicks": [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0],
        }
    )
    frame = analyse(look_statistics(outcomes, [T0 + DAY, T0 + 2 * DAY], "clicks"), Design())
    # Look 0: every unit at 0 clicks, std err 0; the library's point interval would claim
    # certainty, so the look reports an unbounded interval and no significance.
    assert frame["std_err"].iloc[0] == 0 and not frame["significant"].iloc[0]
    assert frame[["lower", "upper"]].iloc[0].tolist() == [-np.inf, np.inf]
    assert np.isfinite(frame[["lower", "upper"]].iloc[1]).all()
    assert frame["significant"].dtype == bool


def frame_at(**last) -> pd.DataFrame:
    """A one-look `analyse` frame: 400 of 1,000 units, control mean 10, nothing significant."""
    row = {
        "look": 3, "at": T0, "n_control": 200, "n_treatment": 200, "mean_control": 10.0,
        "mean_treatment": 10.1, "effect": 0.1, "lower": -0.5, "upper": 0.7,
        "relative_effect": 0.01, "significant": False, "srm_p": 0.5, "variance_reduction": 0.0,
        "std_err": 0.2, "adjusted_alpha": 0.01,
    }  # fmt: skip
    return pd.DataFrame([{**row, **last}])


WORSE = frame_at(effect=-1.0, lower=-1.5, upper=-0.5, significant=True)
BETTER = frame_at(effect=1.0, lower=0.5, upper=1.5, significant=True)


@pytest.mark.parametrize(
    ("primary", "design", "guardrails", "action"),
    [
        (frame_at(srm_p=1e-5, significant=True), Design(expected_units=1000), {}, "stop_srm"),
        (BETTER, Design(expected_units=1000), {"aov": (WORSE, True)}, "stop_guardrail"),
        (BETTER, Design(expected_units=1000), {"aov": (WORSE, False)}, "promote"),
        (BETTER, Design(expected_units=1000), {"aov": (frame_at(), True)}, "promote"),
        (WORSE, Design(expected_units=1000), {}, "stop_harm"),
        (WORSE, Design(expected_units=1000, higher_is_better=False), {}, "promote"),
        (BETTER, Design(expected_units=1000, higher_is_better=False), {}, "stop_harm"),
        (frame_at(), Design(expected_units=400), {}, "stop_futility"),
        (frame_at(), Design(expected_units=1000, min_relative_uplift=0.1), {}, "stop_futility"),
        (frame_at(), Design(expected_units=1000, min_relative_uplift=0.05), {}, "continue"),
        (frame_at(), Design(expected_units=1000), {}, "continue"),
    ],
)
def test_decide(primary, design, guardrails, action):
    decision = decide(primary, design, guardrails)
    assert decision.action == action and decision.look == 3
    assert decision.reason.endswith(".") and any(ch.isdigit() for ch in decision.reason)


def _drop(column):
    return lambda f: f.drop(columns=[column])


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (_drop("arm"), "lacks column"),
        (_drop("profit"), "lacks column"),
        (lambda f: f.assign(arm=f["arm"].replace("treatment", "variant")), "unknown arm"),
        (lambda f: f.assign(at=f["at"].dt.tz_localize(None)), "tz-aware"),
        (lambda f: f.assign(profit=f["profit"].where(f.index != 0)), "missing"),
        (lambda f: f.assign(arm=np.where(f.index == 0, "treatment", "control")), "both arms"),
    ],
)
def test_bad_outcomes_are_refused(spoil, message):
    outcomes, looks, _ = stream(n=20, days=2, seed=9)
    with pytest.raises(ValueError, match=message):
        look_statistics(spoil(outcomes), looks, "profit")


def test_bad_looks_covariates_and_stats_are_refused():
    outcomes, looks, pre = stream(n=20, days=2, seed=9)
    with pytest.raises(ValueError, match="ascending"):
        look_statistics(outcomes, looks[::-1], "profit")
    with pytest.raises(ValueError, match="more than one row"):
        look_statistics(outcomes, looks, "profit", pd.concat([pre, pre]))
    stats = look_statistics(outcomes, looks, "profit")
    with pytest.raises(ValueError, match="lacks column"):
        analyse(stats.drop(columns=["xy_sum"]), Design())
    with pytest.raises(ValueError, match="one row for each arm"):
        analyse(stats.iloc[:-1], Design())
    with pytest.raises(ValueError, match="between 0 and 1"):
        sample_ratio_p(10, 10, 1.0)
