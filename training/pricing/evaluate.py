"""Judging a pricing model: holdout RMSE against the references, elasticities, and, on the
simulator, against the truth.

* `holdout_table`: RMSE of log(1 + units) on the test rows for our model and every reference of
  `baselines.REFERENCES`, all fitted on the same fit + valid rows.
* `elasticity_table`: the own-price elasticity per item x store (mean over its test rows, the
  ensemble's spread beside it), and its distribution per item.
* `simulator_scores`: where the truth is known (the simulator's constant elasticity and cost per
  item), the median absolute percentage error of the recovered elasticities, and the profit our
  optimiser's prices earn under the true demand curves as a share of the oracle's
  (cost x e / (1 + e)), with no guardrail but the default search range.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .baselines import REFERENCES, log_units
from .predict import PricingModel

OURS = "aisle (ours)"


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(predicted) - np.asarray(actual)) ** 2)))


def reference_forecasts(train: pd.DataFrame, rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every reference of `REFERENCES` fitted on `train`: its forecast of log(1 + units) for
    `rows` (NaN where it cannot forecast a row). The holdout table and the gate both read it, so
    the gate's floor is the figure the training run reported."""
    return {name: make().fit(train).predict(rows) for name, make in REFERENCES.items()}


def holdout_table(
    model: PricingModel, train: pd.DataFrame, test: pd.DataFrame, references: bool = True
) -> dict[str, dict[str, float]]:
    """name -> {"rmse", "rows"} on `test`; rows with an item or store unseen in training are
    left out for every model alike (and counted)."""
    predicted = model.predict(test, unknown="drop")
    scored = test.loc[predicted.index]
    actual = log_units(scored)
    table = {OURS: {"rmse": rmse(predicted.log_units, actual), "rows": len(scored)}}
    if references:
        for name, forecast in reference_forecasts(train, scored).items():
            table[name] = {"rmse": rmse(forecast, actual), "rows": len(scored)}
    return table


def elasticity_table(model: PricingModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Mean own-price elasticity per item x store over `frame`'s rows, and the ensemble spread."""
    rows = model.elasticities(frame, unknown="drop")
    return (
        rows.groupby(["item_id", "store_id"])[["elasticity", "elasticity_std"]].mean().reset_index()
    )


def elasticity_distribution(pairs: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per item: min, quartiles and max of its stores' elasticities, and the share negative."""
    out = {}
    for item, group in pairs.groupby("item_id"):
        values = group.elasticity.to_numpy()
        out[str(item)] = {
            "min": float(values.min()),
            "q25": float(np.quantile(values, 0.25)),
            "median": float(np.median(values)),
            "q75": float(np.quantile(values, 0.75)),
            "max": float(values.max()),
            "share_negative": float((values < 0).mean()),
        }
    return out


def simulator_scores(
    model: PricingModel, frame: pd.DataFrame, truth_items: pd.DataFrame
) -> dict[str, Any]:
    """Recovered elasticities and optimised profit against the simulator's truth.

    `frame`: rows to judge on (the test weeks); `truth_items`: the simulator's items truth
    (item_id, elasticity, cost). Elasticity per item = mean over its rows; profit per item x
    store at the last week's row, under the true curve q(p) ~ p ** e."""
    truth = truth_items.set_index("item_id")
    pairs = elasticity_table(model, frame)
    per_item = pairs.groupby("item_id").elasticity.mean()
    true_e = truth.elasticity.reindex(per_item.index)
    error = (per_item - true_e).abs() / true_e.abs()

    last_week = frame[frame.event_timestamp == frame.event_timestamp.max()]
    last_week = last_week[last_week.item_id.isin(model.design.item_ids)]
    last_week = last_week[last_week.store_id.isin(model.design.store_ids)]
    ratios = []
    for _, row in last_week.iterrows():
        e, cost = float(truth.elasticity[row.item_id]), float(truth.cost[row.item_id])
        quote = model.quote(row.to_frame().T.infer_objects(), cost=cost)
        oracle = cost * e / (1 + e)

        ours = _true_profit(quote.decision.price, cost, e, oracle)
        best = _true_profit(oracle, cost, e, oracle)
        ratios.append(ours / best)
    return {
        "items": len(per_item),
        "elasticity_median_abs_pct_error": float(100 * error.median()),
        "elasticity_abs_pct_error_q90": float(100 * error.quantile(0.9)),
        "quotes": len(ratios),
        "profit_vs_oracle_pct": float(100 * np.mean(ratios)),
        "profit_vs_oracle_worst_pct": float(100 * min(ratios)),
    }


def _true_profit(price: float, cost: float, elasticity: float, reference: float) -> float:
    """Profit under constant-elasticity demand, in units of the demand at `reference`."""
    return (price - cost) * (price / reference) ** elasticity
