"""The pricing model's gate: challenger against champion on the training set's latest weeks (its
test weeks), on the rows both know.

Primary metric RMSE of log(1 + units); MAE within tolerance; floor: last week's units (reference
(d)) on the same rows. Behavioural tests: demand falls with price on every sampled row, and
guard-railed quotes (floor, ceiling, maximum change, minimum margin) break no guardrail, on
up to QUOTED_ROWS sampled rows whose rails admit a whole-cent price (rails the shelf itself makes
impossible, e.g. ±20 % around $0.0155 an ounce, say nothing of the model and are left out).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.settings import Settings
from training.gate import MetricRule, decide, gate_inputs, record

from .baselines import LastValue, log_units
from .evaluate import rmse

log = logging.getLogger(__name__)
QUOTED_ROWS = 10  # quotes are the slow part (an optimiser run each)


def gate_step(
    training_set: str | Path, version: str, settings: Settings | None = None
) -> dict[str, Any]:
    """Evaluate `version` (and the champion) on the test weeks, decide, record on the version."""
    from .dataset import PricingData
    from .registry import MODEL_NAME, load_pricing

    data = PricingData.load(Path(training_set))
    if data.test.empty:
        raise ValueError(f"{training_set}: no test week; the gate has no holdout")
    inputs = gate_inputs(MODEL_NAME, version, load_pricing, settings)
    policy, models, challenger = inputs.policy, inputs.models, inputs.models["challenger"]
    predictions = {name: m.predict(data.test, unknown="drop") for name, m in models.items()}
    shared = data.test.index
    for predicted in predictions.values():
        shared = shared.intersection(predicted.index)
    if shared.empty:
        raise ValueError("challenger and champion know no test row in common")
    rows = data.test.loc[shared]
    actual = log_units(rows)
    metrics = {
        name: _errors(predicted.loc[shared].log_units.to_numpy(), actual)
        for name, predicted in predictions.items()
    }
    history = pd.concat([data.fit, data.valid], ignore_index=True)
    metrics["last value"] = _errors(LastValue().fit(history).predict(rows), actual)
    floor = metrics["last value"]["rmse"]
    if policy.pricing_max_rmse is not None:
        floor = min(floor, policy.pricing_max_rmse)
    rules = [
        MetricRule("rmse", False, margin=policy.pricing_margin, floor=floor),
        MetricRule("mae", False, tolerance=policy.pricing_tolerance),
    ]
    behaviour = behavioural_tests(challenger, rows, policy.behaviour_sample)
    champion = inputs.champion_version
    decision = record(decide(MODEL_NAME, version, champion, rules, metrics, behaviour))
    decision.metrics["rows"] = {"compared": float(len(rows)), "test": float(len(data.test))}
    return decision.to_dict()


def _errors(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    usable = ~np.isnan(predicted)
    predicted, actual = predicted[usable], np.asarray(actual)[usable]
    return {
        "rmse": round(rmse(predicted, actual), 6),
        "mae": round(float(np.mean(np.abs(predicted - actual))), 6),
    }


def behavioural_tests(model, rows: pd.DataFrame, sample: int) -> dict[str, bool]:
    from .quoting import GuardrailError, Guardrails, violations
    from .quoting.interval import allowed_interval

    picked = rows.sample(min(sample, len(rows)), random_state=0)
    falls = True
    for n in range(len(picked)):
        row = picked.iloc[[n]]
        price = float(row.price.iloc[0])
        units = model.demand(row, np.array([0.8, 0.9, 1.0, 1.1, 1.25]) * price)
        falls &= bool(np.all(np.diff(units) < 0))
    held, quoted, unquotable = True, 0, 0
    for n in range(len(picked)):
        if quoted == QUOTED_ROWS:
            break
        row = picked.iloc[[n]]
        price = float(row.price.iloc[0])
        cost = round(0.6 * price, 4)
        rails = Guardrails(
            floor=round(0.7 * price, 2),
            ceiling=round(1.4 * price, 2),
            max_change_pct=20.0,
            min_margin_pct=10.0,
        )
        try:  # the shelf's own rails may admit no whole cent (prices of a few cents per ounce)
            allowed_interval(cost, rails, price)
        except GuardrailError:
            unquotable += 1
            continue
        quote = model.quote(row, cost, rails, current_price=price)
        held &= not violations(quote.decision.price, cost, rails, price)
        quoted += 1
    if unquotable:
        log.warning("guardrail test: %d sampled rows left out, their rails admit no whole cent; "
                    "%d quoted", unquotable, quoted)  # fmt: skip
    return {"demand falls with price": falls, "guardrails held": held}
