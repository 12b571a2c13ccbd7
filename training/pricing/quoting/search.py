"""The search: the best price on a cent grid under a demand curve, coarse to fine.

Prices are integer cents internally. When the range holds at most `max_candidates` allowed prices
(`MAX_CANDIDATES`, 20,001, by default) demand is evaluated at every one of them and the best wins
(ties go to the lower price); otherwise a coarse grid of `max_candidates` points is evaluated and
the search zooms, at cent resolution, into the neighbourhoods of the best `REFINE_TOP` coarse
points, repeating until a neighbourhood is small enough to evaluate whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .grid import Grid
from .guardrails import Objective

REFINE_TOP = 8  # coarse winners whose neighbourhoods are searched at cent resolution

Demand = Callable[[np.ndarray], np.ndarray]


def expected_units(demand: Demand, prices: np.ndarray) -> np.ndarray:
    """Expected units at `prices`, checked: one finite value >= 0 per price."""
    units = np.asarray(demand(prices), dtype=float)
    if units.shape != prices.shape:
        try:
            units = np.broadcast_to(units, prices.shape)
        except ValueError:
            raise ValueError(
                f"the demand model returned shape {units.shape} for {prices.size} prices: it "
                "must return one expected-units value per price"
            ) from None
    bad = ~np.isfinite(units) | (units < 0)
    if bad.any():
        first = int(np.argmax(bad))
        raise ValueError(
            "the demand model returned invalid values: expected units must be finite and >= 0, "
            f"got {units[first]} at price {prices[first]:.2f} ({int(bad.sum())} of "
            f"{prices.size} prices)"
        )
    return units


def optimum(
    demand: Demand, cost: float, objective: Objective, grid: Grid, budget: int
) -> tuple[int, float]:
    """The best cent price on `grid` and its objective value."""
    score = _scorer(demand, cost, objective, grid)
    index = _best_index(grid, score, budget)
    return int(grid.cents(index)), float(score(np.array([index]))[0])


def _scorer(
    demand: Demand, cost: float, objective: Objective, grid: Grid
) -> Callable[[np.ndarray], np.ndarray]:
    def score(index: np.ndarray) -> np.ndarray:
        prices = grid.cents(index) / 100
        units = expected_units(demand, prices)
        return (prices - cost) * units if objective == "profit" else prices * units

    return score


def _best_index(grid: Grid, score: Callable[[np.ndarray], np.ndarray], budget: int) -> int:
    """The grid index with the highest score (ties: the lower index among those compared)."""
    segments = [(0, grid.size - 1)]
    best_index, best_score = -1, -math.inf

    def consider(index: np.ndarray, scores: np.ndarray) -> None:
        nonlocal best_index, best_score
        k = int(np.argmax(scores))
        value, at = float(scores[k]), int(index[k])
        if value > best_score or (value == best_score and at < best_index):
            best_index, best_score = at, value

    while True:
        total = sum(b - a + 1 for a, b in segments)
        if total <= budget:
            index = np.concatenate([np.arange(a, b + 1) for a, b in segments])
            consider(index, score(index))
            return best_index
        coarse = np.unique(
            np.concatenate(
                [
                    np.linspace(a, b, max(2, round(budget * (b - a + 1) / total)))
                    .round()
                    .astype(np.int64)
                    for a, b in segments
                ]
            )
        )
        scores = score(coarse)
        consider(coarse, scores)
        around = []
        for k in np.argsort(-scores, kind="stable")[:REFINE_TOP]:
            around.append((int(coarse[max(k - 1, 0)]), int(coarse[min(k + 1, len(coarse) - 1)])))
        merged: list[tuple[int, int]] = []
        for a, b in sorted(around):
            if merged and a <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        if sum(b - a + 1 for a, b in merged) >= total:  # no progress: cannot happen, but stop
            raise RuntimeError("the price search did not narrow; raise max_candidates")
        segments = merged
