"""The pricing model's gate: challenger against champion on the training set's latest weeks (its
test weeks), on the rows both know.

Primary metric RMSE of log(1 + units); MAE within tolerance; floor: the strongest of the
references (a)-(e) (`baselines.REFERENCES`), refitted on the training set's fit + valid rows and
scored on the same rows, for every model, a first one included (a first model that only had to
beat last week's units once shipped worse than a textbook regression); a model that loses is
rejected with the reference named. Behavioural tests: demand falls with price on every sampled
row, and guard-railed quotes (floor, ceiling, maximum change, minimum margin) break no guardrail, on
up to QUOTED_ROWS sampled rows whose rails admit a whole-cent price (rails the shelf itself makes
impossible, e.g. ±20 % around $0.0155 an ounce, say nothing of the model and are left out).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.settings import GatePolicy, Settings
from training.gate import GateDecision, MetricRule, decide, gate_inputs, record

from .baselines import log_units
from .evaluate import reference_forecasts, rmse

log = logging.getLogger(__name__)
QUOTED_ROWS = 10  # quotes are the slow part (an optimiser run each)
LAST_VALUE = "(d) last value"


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
    decision = judge(
        MODEL_NAME, version, inputs.models, inputs.champion_version, data, inputs.policy
    )
    rows = decision.metrics.pop("rows")
    decision = record(decision)
    decision.metrics["rows"] = rows
    return decision.to_dict()


def judge(
    model_name: str,
    version: str,
    models: dict[str, Any],
    champion_version: str | None,
    data: Any,
    policy: GatePolicy,
) -> GateDecision:
    """The decision on `models` ("challenger", and "champion" when there is one) over the test
    rows of `data` (a PricingData) both know, nothing recorded; `metrics["rows"]` counts them."""
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
    references = {
        # (d) keeps its short key: dashboards and tags read "last value"
        ("last value" if name == LAST_VALUE else name): _errors(forecast, actual)
        for name, forecast in reference_forecasts(history, rows).items()
    }
    metrics.update(references)
    source = min(references, key=lambda name: references[name]["rmse"])
    floor = references[source]["rmse"]
    if policy.pricing_max_rmse is not None and policy.pricing_max_rmse < floor:
        source, floor = "setting gate.pricing_max_rmse", policy.pricing_max_rmse
    rules = [
        MetricRule("rmse", False, margin=policy.pricing_margin, floor=floor, floor_source=source),
        MetricRule("mae", False, tolerance=policy.pricing_tolerance),
    ]
    behaviour = behavioural_tests(models["challenger"], rows, policy.behaviour_sample)
    decision = decide(model_name, version, champion_version, rules, metrics, behaviour)
    decision.metrics["rows"] = {"compared": float(len(rows)), "test": float(len(data.test))}
    return decision


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
