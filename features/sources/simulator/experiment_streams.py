"""An A/B experiment without HTTP: the response model answers two policies' answers, so an
analysis can be checked against the true average treatment effect.

`simulate_exposures` runs `days` days from the start of world week `start_week`. Units are the
shopper (recommendations) or the shelf, item x store (prices), named as the gateway names them
("u00042", "i0001|s01") and assigned as it assigns them: treatment when
sha256("<experiment id>:<unit>") falls below `treatment_share` (serving.experiments.arm_of's
rule), so a unit keeps its arm all along. Each day either `visitors_per_day` visitors are drawn
by activity, or every shelf (or a fixed sample of `shelves`) is priced; both arms' policies
answer every exposure, the unit's own arm's answer is shown and its outcome drawn, and the
expectations of both answers are kept as the truth.

A policy is a callable (model, units, week, rng) -> answers: units are user indices (n,) with
answers shown lists (n, k) of item indices (-1 pads), or shelves (n, 2) of [item, store] with
answers prices (n,). The ready ones (`POLICIES`) can be named instead: "popularity",
"affinity" (the known-better recommender), "shelf_price", "oracle_price" (the known-better
price). A named list policy gets `k`; a callable's lists are cut or padded (-1) to k slots.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from core.arms import position

from .events import DAY, HOUR_TRAFFIC
from .responses import ResponseModel

Policy = Callable[[ResponseModel, np.ndarray, int, np.random.Generator], np.ndarray]
ARMS = ("control", "treatment")
# Each kind's metrics, and the expectation behind each (recommendation_expectations' or
# price_expectations' key).
METRICS = {
    "recommendations": {"clicked": "click", "purchased": "purchases", "revenue": "revenue"},
    "prices": {"units": "units", "revenue": "revenue", "profit": "profit"},
}


def popularity_policy(
    model: ResponseModel, units: np.ndarray, week: int, rng: np.random.Generator, k: int = 10
) -> np.ndarray:
    return model.popularity_lists(len(units), k, week)


def affinity_policy(
    model: ResponseModel, units: np.ndarray, week: int, rng: np.random.Generator, k: int = 10
) -> np.ndarray:
    return model.affinity_lists(units, k, week)


def shelf_price_policy(
    model: ResponseModel, units: np.ndarray, week: int, rng: np.random.Generator
) -> np.ndarray:
    return model.shelf_prices(units[:, 0], units[:, 1], week)


def oracle_price_policy(
    model: ResponseModel, units: np.ndarray, week: int, rng: np.random.Generator
) -> np.ndarray:
    return model.oracle_prices(units[:, 0])


READY = {
    "recommendations": {"popularity": popularity_policy, "affinity": affinity_policy},
    "prices": {"shelf_price": shelf_price_policy, "oracle_price": oracle_price_policy},
}
POLICIES: dict[str, Callable[..., np.ndarray]] = READY["recommendations"] | READY["prices"]


class ExperimentStreams(NamedTuple):
    """What `simulate_exposures` returns.

    outcomes: one row per exposure (a visit, or a shelf-day), ordered by `at`: unit, arm, at (UTC;
      a visit's moment by the hour-of-day traffic, a shelf-day's midnight), then clicked (0/1),
      purchased (recommended items bought) and revenue; or price (the one shown), units, revenue
      and profit; and true_effect_<metric>: the expected outcome of the treatment's answer to
      that exposure minus the control's (so a truth can follow any windowing the analysis uses).
    truth: one row per exposed unit: unit, arm, exposures, and per metric m the expectation summed
      over the unit's exposures under each policy, m_control and m_treatment. The true average
      treatment effect per unit is mean(m_treatment - m_control); per exposure, divide the sums
      by the exposures summed.
    pre: one row per unit of `truth`, the CUPED covariate: the same metrics drawn under the
      control policy over the `pre_days` days before the start, summed, with their exposures (0
      for a shopper who did not visit then).
    """

    outcomes: pd.DataFrame
    truth: pd.DataFrame
    pre: pd.DataFrame


def simulate_exposures(
    model: ResponseModel,
    policies: Mapping[str, Policy | str],
    days: int,
    visitors_per_day: int,
    treatment_share: float,
    seed: int,
    kind: Literal["recommendations", "prices"],
    k: int = 10,
    shelves: int | None = None,
    pre_days: int = 7,
    start_week: int = 0,
    experiment_id: str | None = None,
) -> ExperimentStreams:
    """Run an experiment of `days` days; `policies` maps "control" and "treatment" to a policy
    or a ready policy's name. See `ExperimentStreams` for what comes back."""
    if set(policies) != set(ARMS):
        raise ValueError(f"policies must name exactly {ARMS}, got {sorted(policies)}")
    if kind not in METRICS:
        raise ValueError(f"kind must be one of {sorted(METRICS)}, got {kind!r}")
    if not 0 <= treatment_share <= 1:
        raise ValueError(f"treatment_share must be in [0, 1], got {treatment_share}")
    model.check_week(start_week)
    model.check_week(start_week + (days - 1) // 7)
    answer = {arm: _bound(policies[arm], kind, k) for arm in ARMS}
    r_units, r_draw, r_pre, r_time, *r_policy = np.random.default_rng(seed).spawn(6)
    exp_id = experiment_id or f"simulated-{seed}"

    if kind == "recommendations":
        n_units, names = model.world.cfg.users, model.user_ids()
        exposure = partial(_recommendation_day, visitors=visitors_per_day, k=k)
    else:
        items = np.flatnonzero(model.on_sale(start_week))
        n_stores = model.world.cfg.stores
        grid = np.stack(np.meshgrid(items, np.arange(n_stores), indexing="ij"), -1).reshape(-1, 2)
        if shelves is not None and shelves < len(grid):
            grid = grid[np.sort(r_units.choice(len(grid), shelves, replace=False))]
        n_units = len(grid)
        names = model.item_ids()[grid[:, 0]] + "|" + model.store_ids()[grid[:, 1]]
        exposure = partial(_price_day, shelves=grid)
    treated = assign(names, exp_id, treatment_share)

    metrics = METRICS[kind]
    rows, sums = [], {f"{m}_{a}": np.zeros(n_units) for m in metrics for a in ARMS}
    seen = np.zeros(n_units, np.int64)
    day0 = pd.Timestamp(model.world.week_start(start_week), tz="UTC")
    for d in range(days):
        week = start_week + d // 7
        unit, drawn, expected = exposure(model, answer, treated, week, r_draw, r_policy)
        seen += np.bincount(unit, minlength=n_units)
        for (m, a), values in expected.items():
            sums[f"{m}_{a}"] += np.bincount(unit, values, minlength=n_units)
        offset = _seconds(kind, len(unit), r_time)
        effects = {  # per exposure, what the treatment's answer is expected to add
            f"true_effect_{m}": expected[(m, ARMS[1])] - expected[(m, ARMS[0])] for m in metrics
        }
        rows.append(pd.DataFrame({"unit": unit, "day": d, "second": offset, **drawn, **effects}))

    outcomes = pd.concat(rows, ignore_index=True)
    at = day0 + pd.to_timedelta(outcomes.pop("day") * DAY + outcomes.pop("second"), unit="s")
    unit = outcomes.pop("unit").to_numpy()
    outcomes.insert(0, "unit", names[unit])
    outcomes.insert(1, "arm", np.where(treated[unit], "treatment", "control"))
    outcomes.insert(2, "at", at)
    outcomes = outcomes.iloc[np.argsort(at.to_numpy(), kind="stable")].reset_index(drop=True)

    exposed = np.flatnonzero(seen)
    truth = pd.DataFrame(
        {
            "unit": names[exposed],
            "arm": np.where(treated[exposed], "treatment", "control"),
            "exposures": seen[exposed],
            **{name: s[exposed] for name, s in sums.items()},
        }
    )
    pre = _pre_period(
        model, answer["control"], exposure, metrics, n_units, start_week, pre_days, r_pre
    )
    pre = pre.iloc[exposed].reset_index(drop=True)
    pre.insert(0, "unit", names[exposed])
    return ExperimentStreams(outcomes, truth, pre)


def assign(units: np.ndarray, experiment_id: str, share: float) -> np.ndarray:
    """True where a unit is in the treatment arm, by the gateway's rule (core.arms)."""
    places = np.fromiter(
        (position(experiment_id, str(u)) for u in units), dtype=np.float64, count=len(units)
    )
    return places < share


def _bound(policy: Policy | str, kind: str, k: int) -> Policy:
    """A policy; a ready one by name, a list policy given `k`."""
    if not isinstance(policy, str):
        return policy
    if policy not in READY[kind]:
        raise ValueError(f"no ready {kind} policy {policy!r}; ready ones: {sorted(READY[kind])}")
    return partial(READY[kind][policy], k=k) if kind == "recommendations" else READY[kind][policy]


def _recommendation_day(
    model: ResponseModel,
    answer: Mapping[str, Policy],
    treated: np.ndarray,
    week: int,
    rng: np.random.Generator,
    r_policy: list[np.random.Generator],
    *,
    visitors: int,
    k: int,
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[tuple[str, str], np.ndarray]]:
    """One day of visits: (units, drawn outcome columns, {(metric, arm): expectation})."""
    users = model.visitors(visitors, rng)
    lists = {
        arm: _slots(answer[arm](model, users, week, r), k)
        for arm, r in zip(ARMS, r_policy, strict=True)
    }
    shown = np.where(treated[users][:, None], lists["treatment"], lists["control"])
    got = model.respond_to_recommendations(users, shown, week, rng)
    drawn = {
        "clicked": got["viewed"].any(axis=1).astype(np.int64),
        "purchased": got["bought"].sum(axis=1),
        "revenue": np.where(got["bought"], got["quantity"] * got["price"], 0.0).sum(axis=1),
    }
    expected = {}
    for arm in ARMS:
        e = model.recommendation_expectations(users, lists[arm], week)
        expected |= {(m, arm): e[key] for m, key in METRICS["recommendations"].items()}
    return users, drawn, expected


def _price_day(
    model: ResponseModel,
    answer: Mapping[str, Policy],
    treated: np.ndarray,
    week: int,
    rng: np.random.Generator,
    r_policy: list[np.random.Generator],
    *,
    shelves: np.ndarray,
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[tuple[str, str], np.ndarray]]:
    """One day of every shelf: (units, drawn outcome columns, {(metric, arm): expectation})."""
    items, stores = shelves[:, 0], shelves[:, 1]
    prices = {
        arm: np.asarray(answer[arm](model, shelves, week, r), float)
        for arm, r in zip(ARMS, r_policy, strict=True)
    }
    price = np.where(treated, prices["treatment"], prices["control"])
    sold = model.sell(items, stores, price, week, rng)
    cost = model.world.cost[items]
    drawn = {
        "price": price,
        "units": sold,
        "revenue": price * sold,
        "profit": (price - cost) * sold,
    }
    expected = {}
    for arm in ARMS:
        e = model.price_expectations(items, stores, prices[arm], week)
        expected |= {(m, arm): e[m] for m in METRICS["prices"]}
    return np.arange(len(shelves)), drawn, expected


def _pre_period(
    model: ResponseModel,
    control: Policy,
    exposure: Callable[..., tuple],
    metrics: Mapping[str, str],
    n_units: int,
    start_week: int,
    pre_days: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Per unit, the metrics drawn under the control policy over the days before the start
    (before week 0 the world's week 0 stands in)."""
    everyone_control = np.zeros(n_units, bool)
    both = {arm: control for arm in ARMS}
    seen = np.zeros(n_units, np.int64)
    totals = {m: np.zeros(n_units) for m in metrics}
    r_policy = rng.spawn(2)
    for d in range(-pre_days, 0):
        week = max(start_week + d // 7, 0)
        unit, drawn, _ = exposure(model, both, everyone_control, week, rng, r_policy)
        seen += np.bincount(unit, minlength=n_units)
        for m in metrics:
            totals[m] += np.bincount(unit, drawn[m], minlength=n_units)
    return pd.DataFrame({"exposures": seen, **totals})


def _slots(lists: np.ndarray, k: int) -> np.ndarray:
    """Shown lists cut or padded (-1) to k slots."""
    lists = np.atleast_2d(np.asarray(lists, np.int64))[:, :k]
    return np.pad(lists, ((0, 0), (0, k - lists.shape[1])), constant_values=-1)


def _seconds(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Seconds into the day: a visit's by the hour-of-day traffic, a shelf-day's 0."""
    if kind == "prices":
        return np.zeros(n)
    hour = rng.choice(24, n, p=HOUR_TRAFFIC / HOUR_TRAFFIC.sum())
    return np.floor(hour * 3600 + rng.random(n) * 3600)
