"""The statistics of an online A/B experiment: sufficient statistics per look, spotify-confidence's
group-sequential CUPED z-test, and the decision a person would take at the last look.

Why (DESIGN.md 5b): a fixed-horizon p-value read every day inflates false positives, so each look
is judged against the library's alpha-spending boundary (Lan-DeMets, alpha * t^2 spent by the
information fraction t = units so far / `Design.expected_units`). The interval at a look is the
library's interval at that look's adjusted alpha: a repeated confidence interval, covering the
true difference at all planned looks at once with probability >= `confidence`. CUPED is the
library's regression adjustment (`ZTestLinreg`) on the unit's pre-experiment value of the metric.
A sample-ratio mismatch (scipy's chi-square against the gateway's split) voids the comparison.

What the library's source (spotify-confidence 4.1) fixes about calling it:
- The sequential test reads one row per arm and look holding the *cumulative* totals up to that
  look: `compute_sequential_adjusted_alpha` takes each row's n_control + n_treatment, divided by
  max(final expected sample size, largest n of any row), as that look's information fraction.
- The boundary at look k depends only on the fractions of looks 1..k (`landem` fills its table
  row by row; the spending alpha * t_k^2 reads only t_k). So while no look exceeds
  `expected_units`, one call with all looks gives each look the boundary a call at that look
  would have given; a look beyond the plan rescales every fraction, so it gets its own call.
- The CUPED slope is fitted once over every row given (`estimate_slope` sums all looks and both
  arms), so in one call an early look's effect uses a slope that also saw later looks. Any slope
  fitted without the arm labels leaves the difference unbiased (the library's variance treats it
  as fixed), so no error rate changes, only replay fidelity: on 2,000-unit CUPED streams (12
  replications, 14 looks) the replayed effect moved <= 0.5 standard errors in the first six looks
  (where the boundary needs |z| > 3), <= 0.1 after, and 1 of 168 looks changed its verdict. A call
  per look would be exact but costs 8x (1.05 s against 0.13 s for 14 looks: the boundary solver
  restarts from the first look), so one call it is; the last look, the one decided on, is exact.
- Information is counted in units, so the boundary holds only if a unit's value is final once it
  enters. Clicks per shopper *to date* keep growing, which makes late looks less correlated with
  early ones than the boundary assumes: A/A with 14 daily looks gave 8.5 % false positives (5.0 %
  with values final on entry). `Design.unit_window` values each unit over a fixed window after
  its first exposure, Spotify's practice. Units all present from day one (profit per shelf) never
  raise n, so the library reuses the first look's alpha at every look: naive peeking.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chisquare
from spotify_confidence import ZTestLinreg
from spotify_confidence.analysis.constants import (
    ADJUSTED_ALPHA,
    ADJUSTED_LOWER,
    ADJUSTED_UPPER,
    DIFFERENCE,
    IS_SIGNIFICANT,
    STD_ERR,
    VARIANCE_REDUCTION,
)

ARMS = ("control", "treatment")
STAT_COLUMNS = ["n", "y_sum", "y_sumsq", "x_sum", "x_sumsq", "xy_sum"]
RESULT_COLUMNS = [
    "look", "at", "n_control", "n_treatment", "mean_control", "mean_treatment", "effect", "lower",
    "upper", "relative_effect", "significant", "srm_p", "variance_reduction", "std_err",
    "adjusted_alpha",
]  # fmt: skip


@dataclass(frozen=True)
class Design:
    confidence: float = 0.95  # interval size; alpha = 1 - confidence (two-sided)
    expected_units: int = 2000  # planned units in both arms: the sequential final sample size
    treatment_share: float = 0.5  # share of units the gateway sends to the treatment arm
    higher_is_better: bool = True
    srm_alpha: float = 0.001  # sample-ratio mismatch flagged below this p-value
    # None: a unit's value is its metric to date, valid only if it stops growing once the unit
    # enters (module docstring); else each unit's metric over this window after first exposure.
    unit_window: pd.Timedelta | None = None
    # Relative uplift worth having: futile once the interval's better end falls short of it.
    # 0.0 leaves only "planned sample reached" as futility (a bad-side interval is stop_harm).
    min_relative_uplift: float = 0.0


@dataclass(frozen=True)
class Decision:
    action: str  # continue | promote | stop_harm | stop_futility | stop_srm | stop_guardrail
    reason: str  # one sentence a person reads, naming the figures
    look: int | None


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(frame.columns)}")


def look_statistics(
    outcomes: pd.DataFrame,
    looks: Sequence[pd.Timestamp],
    metric: str,
    covariates: pd.DataFrame | None = None,
    window: pd.Timedelta | None = None,
) -> pd.DataFrame:
    """Cumulative per-arm sufficient statistics at each look, the form the library's sequential
    test reads (one row per look and arm, everything up to that look).

    `outcomes` has one row per exposure: `unit` (the unit of randomisation), `arm`, `at` (tz-aware
    UTC) and the numeric `metric`; a unit's value at look t is its metric summed over exposures at
    or before t (clicks per shopper, profit per shelf), and a unit counts from its first exposure.
    `covariates` (`unit`, `pre`) gives x, the unit's pre-experiment value of the metric (0 when
    missing). Columns: look (index into `looks`), at, arm, n, y_sum, y_sumsq, x_sum, x_sumsq,
    xy_sum. A look with fewer than two units in an arm is left out: no variance exists there.
    With a `window`, a unit enters once its first exposure is `window` old, valued over that
    window only: see `Design.unit_window` for why.
    """
    _require(outcomes, ["unit", "arm", "at", metric], "outcomes")
    unknown = sorted(set(outcomes["arm"].astype(str)) - set(ARMS))
    if unknown:
        raise ValueError(f"outcomes has unknown arm(s) {unknown}; expected {list(ARMS)}")
    values = pd.to_numeric(outcomes[metric], errors="coerce")
    if values.isna().any():
        raise ValueError(f"metric {metric!r} has {int(values.isna().sum())} missing/non-numeric")
    at = pd.DatetimeIndex(outcomes["at"])
    times = pd.DatetimeIndex(list(looks))
    if at.tz is None or times.tz is None:
        raise ValueError("outcomes.at and looks must be tz-aware (UTC) timestamps")
    at, times = at.tz_convert("UTC").as_unit("ns"), times.tz_convert("UTC").as_unit("ns")
    if len(times) == 0 or not times.is_monotonic_increasing or not times.is_unique:
        raise ValueError("looks must be a non-empty, strictly ascending sequence of times")

    units, unit_idx = np.unique(outcomes["unit"].astype(str).to_numpy(), return_inverse=True)
    treated = (outcomes["arm"].astype(str) == ARMS[1]).to_numpy()
    arm_votes = np.bincount(unit_idx, weights=treated, minlength=len(units))
    exposures = np.bincount(unit_idx, minlength=len(units))
    switched = (arm_votes > 0) & (arm_votes < exposures)
    if switched.any():
        raise ValueError(
            f"{int(switched.sum())} unit(s) appear in both arms, e.g. {units[switched][:3]}"
        )
    is_treated = arm_votes > 0

    stamp = at.asi8  # ns since the epoch, UTC
    if window is not None:  # a unit's value is final when it enters: first exposure + window
        enters = np.full(len(units), np.iinfo(np.int64).max)
        np.minimum.at(enters, unit_idx, stamp)
        stamp = enters[unit_idx] + pd.Timedelta(window).value
        inside = at.asi8 <= stamp
        stamp, unit_idx, values = stamp[inside], unit_idx[inside], values[inside]
    # The look each exposure first counts in; exposures after the last look count in none.
    first_look = np.searchsorted(times.asi8, stamp, side="left")
    keep = first_look < len(times)
    per_look = np.zeros((len(units), len(times)))
    np.add.at(per_look, (unit_idx[keep], first_look[keep]), values.to_numpy(float)[keep])
    y = per_look.cumsum(axis=1)  # unit x look: the unit's metric up to each look
    seen_from = np.full(len(units), len(times))
    np.minimum.at(seen_from, unit_idx[keep], first_look[keep])
    exposed = seen_from[:, None] <= np.arange(len(times))[None, :]

    x = np.zeros(len(units))
    if covariates is not None:
        _require(covariates, ["unit", "pre"], "covariates")
        pre = covariates.assign(unit=covariates["unit"].astype(str))
        if pre["unit"].duplicated().any():
            raise ValueError("covariates has more than one row for some unit")
        x = pre.set_index("unit")["pre"].astype(float).reindex(units).fillna(0.0).to_numpy()

    rows = []
    for arm, in_arm in zip(ARMS, (~is_treated, is_treated), strict=True):
        mask = exposed & in_arm[:, None]
        ym, xm = np.where(mask, y, 0.0), np.where(mask, x[:, None], 0.0)
        stats = {
            "n": mask.sum(axis=0),
            "y_sum": ym.sum(axis=0),
            "y_sumsq": (ym**2).sum(axis=0),
            "x_sum": xm.sum(axis=0),
            "x_sumsq": (xm**2).sum(axis=0),
            "xy_sum": (xm * ym).sum(axis=0),
        }
        rows.append(pd.DataFrame({"look": np.arange(len(times)), "at": times, "arm": arm, **stats}))
    out = pd.concat(rows, ignore_index=True)
    enough = out.groupby("look")["n"].transform("min") >= 2
    return out[enough].sort_values(["look", "arm"], ignore_index=True)


def _library_difference(stats: pd.DataFrame, design: Design) -> pd.DataFrame:
    """One spotify-confidence call over the given looks: rows per look, the library's columns."""
    frame = stats.assign(expected=design.expected_units)
    with warnings.catch_warnings():  # the library's pandas-2 FutureWarnings, not ours to fix
        warnings.simplefilter("ignore", FutureWarning)
        test = ZTestLinreg(
            frame, numerator_column="y_sum", numerator_sum_squares_column="y_sumsq",
            denominator_column="n", feature_column="x_sum", feature_sum_squares_column="x_sumsq",
            feature_cross_sum_column="xy_sum", categorical_group_columns="arm",
            ordinal_group_column="look", interval_size=design.confidence,
        )  # fmt: skip
        diff = test.difference(
            ARMS[0], ARMS[1], groupby="look", final_expected_sample_size_column="expected",
            verbose=True,
        )  # fmt: skip
    return diff.set_index("look")


def _calls(wide: pd.DataFrame, design: Design) -> list[tuple[pd.Index, bool]]:
    """The library calls that give each look the boundary a call at that look would have given, as
    (looks passed, keep all rows?): one call for the looks within the plan, and for each look
    beyond it (which rescales every fraction) a call with the looks up to it, keeping its row."""
    within = (wide["n"].sum(axis=1) <= design.expected_units).to_numpy()
    head = [(wide.index[within], True)] if within.any() else []
    return head + [(wide.index[: i + 1], False) for i in np.flatnonzero(~within)]


def analyse(stats: pd.DataFrame, design: Design) -> pd.DataFrame:
    """One row per look: raw means, the CUPED-adjusted difference treatment - control, its
    sequential interval and significance as spotify-confidence reports them, and the SRM p-value.

    Columns: look, at, n_control, n_treatment, mean_control, mean_treatment, effect, lower, upper,
    relative_effect, significant, srm_p, variance_reduction, plus std_err and adjusted_alpha (the
    two-sided alpha the boundary allows at that look) for whoever wants to read the test.
    """
    _require(stats, ["look", "at", "arm", *STAT_COLUMNS], "stats")
    unknown = sorted(set(stats["arm"]) - set(ARMS))
    if unknown:
        raise ValueError(f"stats has unknown arm(s) {unknown}; expected {list(ARMS)}")
    if stats.empty:  # too early: no look has two units in each arm yet
        return pd.DataFrame(columns=RESULT_COLUMNS)
    wide = stats.pivot(index="look", columns="arm", values=STAT_COLUMNS).sort_index()
    if wide.isna().any().any():
        raise ValueError("every look in stats needs one row for each arm")
    at = stats.drop_duplicates("look").set_index("look")["at"].reindex(wide.index)

    parts = []
    for looks, keep_all in _calls(wide, design):
        result = _library_difference(stats[stats["look"].isin(looks)], design)
        parts.append(result if keep_all else result.iloc[[-1]])
    lib = pd.concat(parts).reindex(wide.index)

    n_c, n_t = wide["n"][ARMS[0]].astype(int), wide["n"][ARMS[1]].astype(int)
    mean_c = wide["y_sum"][ARMS[0]].astype(float) / n_c
    out = pd.DataFrame({
        "look": wide.index.astype(int), "at": at, "n_control": n_c, "n_treatment": n_t,
        "mean_control": mean_c, "mean_treatment": wide["y_sum"][ARMS[1]].astype(float) / n_t,
        "effect": lib[DIFFERENCE].astype(float), "lower": lib[ADJUSTED_LOWER].astype(float),
        "upper": lib[ADJUSTED_UPPER].astype(float),
    })  # fmt: skip
    out["relative_effect"] = out["effect"] / mean_c.where(mean_c != 0)
    out["significant"] = lib[IS_SIGNIFICANT].astype(bool)
    out["srm_p"] = [
        sample_ratio_p(int(c), int(t), design.treatment_share)
        for c, t in zip(n_c, n_t, strict=True)
    ]
    out["variance_reduction"] = lib[VARIANCE_REDUCTION].astype(float)
    out["std_err"] = lib[STD_ERR].astype(float)
    out["adjusted_alpha"] = lib[ADJUSTED_ALPHA].astype(float)
    # Where no value varies yet (every early shopper at 0 clicks) the std err is 0 and the
    # library's interval collapses to a point (or z = inf): nothing is known there yet.
    blind = ~(out["std_err"] > 0)
    out.loc[blind, ["lower", "upper", "significant"]] = [-np.inf, np.inf, False]
    return out[RESULT_COLUMNS].reset_index(drop=True)


def _interval(row: pd.Series) -> str:
    return (
        f"{row['effect']:+.4g} ({row['relative_effect']:+.1%} of control's "
        f"{row['mean_control']:.4g}), sequential interval [{row['lower']:.4g}, {row['upper']:.4g}]"
    )


def decide(
    primary: pd.DataFrame,
    design: Design,
    guardrails: Mapping[str, tuple[pd.DataFrame, bool]] | None = None,
) -> Decision:
    """What to do at the last look of `primary` (an `analyse` frame), in order of precedence:
    a sample-ratio mismatch voids the comparison (stop_srm); a guardrail significantly worse at its
    last look stops the test whatever the primary says (stop_guardrail); then the primary is
    significantly better (promote) or worse (stop_harm); futile once the planned units are in
    without significance, or when the interval's better end falls short of
    `design.min_relative_uplift` (stop_futility); else continue.

    `guardrails` maps a metric's name to (its `analyse` frame, higher_is_better for that metric):
    the direction travels with the frame because a guardrail need not point the primary's way
    (latency, returns). Guardrails get no multiplicity correction: one more stop is the safe side.
    """
    if primary.empty:
        return Decision("continue", "No look has two units in each arm yet.", None)
    last = primary.iloc[-1]
    look, n = int(last["look"]), int(last["n_control"] + last["n_treatment"])
    if last["srm_p"] < design.srm_alpha:
        share = f"{design.treatment_share:.0%} treatment share"
        return Decision(
            "stop_srm",
            f"Sample-ratio mismatch at look {look}: {int(last['n_control'])} control vs "
            f"{int(last['n_treatment'])} treatment units against a planned {share} "
            f"(p = {last['srm_p']:.2g} < {design.srm_alpha:g}).",
            look,
        )
    for name, (frame, higher_is_better) in (guardrails or {}).items():
        g = frame.iloc[-1] if not frame.empty else None
        if g is not None and g["significant"] and (g["effect"] > 0) != higher_is_better:
            text = f"Guardrail {name} is significantly worse at look {int(g['look'])}: "
            return Decision("stop_guardrail", text + f"{_interval(g)}.", look)
    figures = f"{_interval(last)}; {n} of {design.expected_units} planned units."
    if last["significant"]:
        better = (last["effect"] > 0) == design.higher_is_better
        text = f"Treatment is significantly {'better' if better else 'worse'} at look {look}: "
        return Decision("promote" if better else "stop_harm", text + figures, look)
    if n >= design.expected_units:
        text = f"The planned units are in without a significant difference at look {look}: "
        return Decision("stop_futility", text + figures, look)
    worth = design.min_relative_uplift * abs(last["mean_control"])
    best = last["upper"] if design.higher_is_better else -last["lower"]
    if design.min_relative_uplift > 0 and best < worth:
        text = f"At look {look} the interval excludes a {design.min_relative_uplift:.1%} uplift: "
        return Decision("stop_futility", text + figures, look)
    return Decision("continue", f"No verdict yet at look {look}: {figures}", look)


def sample_ratio_p(n_control: int, n_treatment: int, treatment_share: float) -> float:
    """Chi-square goodness-of-fit p-value of the arms' unit counts against the planned split."""
    if not 0 < treatment_share < 1:
        raise ValueError(f"treatment_share must lie between 0 and 1, got {treatment_share}")
    total = n_control + n_treatment
    expected = [total * (1 - treatment_share), total * treatment_share]
    return float(chisquare([n_control, n_treatment], f_exp=expected).pvalue)


def run_looks(
    outcomes: pd.DataFrame,
    looks: Sequence[pd.Timestamp],
    metric: str,
    design: Design,
    covariates: pd.DataFrame | None = None,
    guardrail_metrics: Sequence[str | tuple[str, bool]] = (),
) -> tuple[pd.DataFrame, Decision]:
    """The one path the Airflow DAG and the benchmark share: statistics, test and decision.

    `guardrail_metrics` names other metric columns of `outcomes`, each a name (higher is better)
    or (name, higher_is_better); they are tested without covariates, since `covariates` holds the
    primary metric's pre-period. Returns the primary's `analyse` frame and the decision.
    """
    window = design.unit_window
    primary = analyse(look_statistics(outcomes, looks, metric, covariates, window), design)
    guardrails = {}
    for spec in guardrail_metrics:
        name, higher_is_better = (spec, True) if isinstance(spec, str) else spec
        guardrails[name] = (
            analyse(look_statistics(outcomes, looks, name, window=window), design),
            higher_is_better,
        )
    return primary, decide(primary, design, guardrails)
