"""The demand model on a synthetic shop with known constant elasticities: it recovers them,
demand falls with price for every row, autograd elasticities match the closed form, quotes hold
their guardrails, checkpoints round-trip, and bad input is refused with the field named."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from training.pricing.design import BadFeatures, Design, UnknownEntity
from training.pricing.model import PricingConfig
from training.pricing.predict import PricingModel
from training.pricing.quoting import GuardrailError, Guardrails, violations
from training.pricing.train import train_pricing

ITEMS = {"i1": -1.5, "i2": -2.2, "i3": -3.0, "i4": -3.6}  # true elasticities
COST = {"i1": 2.0, "i2": 3.0, "i3": 1.5, "i4": 4.0}
STORES = ("s1", "s2", "s3")
WEEKS = 30


def synthetic_sales(seed: int = 0) -> pd.DataFrame:
    """Rows shaped like a pricing_v1 training set: q ~ Poisson(200 * size * (p / base) ** e)."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-04", tz="UTC")
    rows = []
    for w in range(WEEKS):
        for s, store in enumerate(STORES):
            prices = {}
            for item in ITEMS:
                base = COST[item] * 1.6
                promo = rng.random() < 0.2
                prices[item] = round(base * np.exp(rng.normal(0, 0.06)) * (0.75 if promo else 1), 2)
                mean = 200 * (1 + 0.3 * s) * (prices[item] / base) ** ITEMS[item]
                rows.append(
                    {
                        "item_id": item,
                        "store_id": store,
                        "event_timestamp": start + pd.Timedelta(weeks=w),
                        "units": float(rng.poisson(mean)),
                        "price": prices[item],
                        "cost": COST[item],
                        "promo": int(promo),
                        "feature": 0.0,
                    }
                )
            week = rows[-len(ITEMS) :]
            ids = sorted(ITEMS)
            for row in week:
                others = [prices[i] for i in ids if i != row["item_id"]]
                row["category_item_ids"] = ids
                row["category_prices"] = [prices[i] for i in ids]
                row["competitor_price_mean"] = float(np.mean(others))
                row["competitor_promo_share"] = float(
                    np.mean([r["promo"] for r in week if r is not row])
                )
                row["competitor_feature_mean"] = 0.0
    frame = pd.DataFrame(rows).sort_values(["item_id", "store_id", "event_timestamp"])
    group = frame.groupby(["item_id", "store_id"])
    frame["units_lag1"] = group.units.shift(1)
    frame["price_lag1"] = group.price.shift(1)
    frame["log_units_lag1"] = np.log1p(frame.units_lag1)
    frame["log_units_mean_4w"] = group.units.transform(
        lambda u: np.log1p(u).shift(1).rolling(4, min_periods=1).mean()
    )
    frame["price_mean_4w"] = group.price.transform(lambda p: p.shift(1).rolling(4, 1).mean())
    frame["weeks_sold_4w"] = group.units.transform(lambda u: u.shift(1).rolling(4, 1).count())
    frame["store_size"] = frame.store_id.map({"s1": 1.0, "s2": 1.3, "s3": 1.6})
    return frame.sort_values(["event_timestamp", "item_id", "store_id"], ignore_index=True)


@pytest.fixture(scope="module")
def sales() -> pd.DataFrame:
    return synthetic_sales()


@pytest.fixture(scope="module")
def model(sales) -> PricingModel:
    weeks = sales.event_timestamp
    cut = weeks.min() + pd.Timedelta(weeks=WEEKS - 6)
    fit, valid = sales[weeks < cut], sales[(weeks >= cut) & (weeks < cut + pd.Timedelta(weeks=3))]
    # one structure: choosing among them is test_pricing_shapes.py's subject (and 12 more fits)
    config = PricingConfig(l2_grid=(1.0, 10.0), structures=("per-item",), members=3, max_iter=200)
    return train_pricing(fit, valid, config, device="cpu").model


def test_recovers_the_true_elasticities(model, sales):
    """Each item's mean elasticity within 15 % of the truth (the issue's simulator target; 120
    rows per item with 6 % price noise and 20 % promotions pin it down to a few percent)."""
    test = sales[sales.event_timestamp >= sales.event_timestamp.max() - pd.Timedelta(weeks=2)]
    per_item = model.elasticities(test).groupby("item_id").elasticity.mean()
    errors = {i: abs(per_item[i] - e) / abs(e) for i, e in ITEMS.items()}
    assert max(errors.values()) <= 0.15, errors
    spread = model.elasticities(test).elasticity_std
    assert (spread > 0).all() and (spread < 0.5).all()  # a bootstrap ensemble disagrees a little


def test_demand_falls_with_price_for_every_row(model, sales):
    prices = np.linspace(0.3, 30, 40)
    for _, row in sales.sample(25, random_state=1).iterrows():
        units = model.demand(row.to_frame().T.infer_objects(), prices)
        step = np.diff(units)
        # strictly falling while any is sold; log(1 + q) reaches q = 0 at a finite price, and 0
        # is where it stays
        assert (step[units[1:] > 0] < 0).all() and (step <= 0).all()


def test_autograd_elasticity_is_the_closed_form(model, sales):
    rows = sales.tail(12)
    member = model.members[0]
    batch = model.design.encode(rows)
    with torch.no_grad():
        log_units = member(batch)
        slope = member.slope(batch)
    units = torch.expm1(log_units)
    closed_form = (-slope * (1 + units) / units).numpy()
    single = PricingModel(model.design, [member], model.config)
    assert np.allclose(single.elasticities(rows).elasticity, closed_form, rtol=1e-9)


def test_quotes_hold_every_guardrail_and_approach_the_oracle(model, sales):
    row = sales[(sales.item_id == "i3") & (sales.store_id == "s2")].tail(1)
    e, cost = ITEMS["i3"], COST["i3"]
    free = model.quote(row, cost=cost)
    oracle = cost * e / (1 + e)
    assert free.decision.price == pytest.approx(oracle, rel=0.1)
    assert free.decision.elasticity < -1
    rails = Guardrails(floor=2.0, ceiling=2.6, max_change_pct=10, price_endings=(0.49, 0.99))
    current = float(row.price.iloc[0])
    quote = model.quote(row, cost=cost, guardrails=rails, current_price=current)
    assert violations(quote.decision.price, cost, rails, current) == []
    assert round(quote.decision.price * 100) % 100 in (49, 99)
    assert quote.to_dict()["item_id"] == "i3"


def test_a_checkpoint_round_trips(model, sales, tmp_path):
    path = model.save(tmp_path / "pricing.pt", {"lineage": {"dataset": "synthetic"}})
    loaded = PricingModel.load(path)
    assert loaded.metadata["lineage"]["dataset"] == "synthetic"
    rows = sales.tail(20)
    assert np.allclose(loaded.predict(rows).log_units, model.predict(rows).log_units)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"item_id": "nope"}, "item_id"),
        ({"store_id": "s9"}, "store_id"),
        ({"price": math.nan}, "price"),
        ({"price": -1.0}, "price"),
        ({"price": 0.0}, "price"),
    ],
)
def test_bad_rows_are_refused_with_the_field_named(model, sales, change, field):
    row = sales.tail(1).assign(**change)
    with pytest.raises((UnknownEntity, BadFeatures)) as error:
        model.quote(row, cost=1.0)
    assert error.value.field == field
    assert field in str(error.value)


@pytest.mark.parametrize(
    ("cost", "rails", "field"),
    [
        (None, None, "cost"),
        (math.nan, None, "cost"),
        (-1.0, None, "cost"),
        (3.0, Guardrails(ceiling=2.5), "ceiling"),
        (1.0, Guardrails(ceiling=1.5, min_margin_pct=50), "min_margin_pct"),
    ],
)
def test_bad_costs_and_guardrails_are_refused(model, sales, cost, rails, field):
    with pytest.raises(GuardrailError) as error:
        model.quote(sales.tail(1), cost=cost, guardrails=rails)
    assert error.value.field == field


def test_missing_history_is_filled_not_propagated(sales):
    first_week = sales[sales.event_timestamp == sales.event_timestamp.min()]
    assert first_week.units_lag1.isna().all()
    batch = Design.fit(sales).encode(first_week)
    assert torch.isfinite(batch.context).all()


def test_the_gate_s_guardrail_check_leaves_out_shelves_whose_rails_admit_no_cent(model, sales):
    """Per-ounce prices (orange juice: $0.0155) make the gate's own ±20 % rails admit no whole
    cent; such rows say nothing of the model, and the check quotes the others instead of
    failing the training run (it raised GuardrailError on a replay's retrain)."""
    from training.pricing.gate import QUOTED_ROWS, behavioural_tests
    from training.pricing.quoting import GuardrailError, Guardrails
    from training.pricing.quoting.interval import allowed_interval

    rows = sales.sample(QUOTED_ROWS + 5, random_state=1).reset_index(drop=True)
    rows.loc[:4, "price"] = 0.0155  # five shelves priced by the ounce
    rails = Guardrails(floor=0.01, ceiling=0.02, max_change_pct=20.0, min_margin_pct=10.0)
    with pytest.raises(GuardrailError):  # what the check used to hit
        allowed_interval(round(0.6 * 0.0155, 4), rails, 0.0155)
    first_quoted = rows.sample(len(rows), random_state=0).price.iloc[:QUOTED_ROWS]  # as the gate
    assert (first_quoted == 0.0155).any()  # the old check would have quoted one and raised
    found = behavioural_tests(model, rows, len(rows))
    assert found == {"demand falls with price": True, "guardrails held": True}
