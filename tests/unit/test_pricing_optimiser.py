"""The guard-railed price optimiser: the analytic optimum, each guardrail binding, price endings,
every bad input named by field, and a property test against brute force over whole cents."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from training.pricing.quoting import (
    DEFAULT_CEILING_MULTIPLE,
    GuardrailError,
    Guardrails,
    PriceDecision,
    candidate_prices,
    feasible_interval,
    optimise_price,
    violations,
)


def constant_elasticity(e: float, scale: float = 100.0):
    return lambda p: scale * np.asarray(p, dtype=float) ** e


def profit(price: float, cost: float, e: float, scale: float = 100.0) -> float:
    return (price - cost) * scale * price**e


def cents(price: float) -> int:
    return round(price * 100)


# ---- the optimum ------------------------------------------------------------------------------
@pytest.mark.parametrize("e", [-1.3, -1.5, -2.0, -3.0, -4.0])
@pytest.mark.parametrize("cost", [1.0, 2.37, 15.0])
def test_constant_elasticity_lands_on_the_analytic_optimum(e, cost):
    got = optimise_price(constant_elasticity(e), cost)
    best = cost * e / (1 + e)
    assert abs(got.price - best) <= 0.01
    assert got.expected_profit >= 0.999 * profit(best, cost, e)
    assert got.binding == ()
    assert got.elasticity == pytest.approx(e, abs=1e-6)
    assert got.expected_profit == pytest.approx((got.price - cost) * got.expected_units)
    assert got.expected_revenue == pytest.approx(got.price * got.expected_units)
    assert violations(got.price, cost, Guardrails(), None) == []


def test_a_wide_range_is_searched_coarse_then_fine_and_still_hits_the_optimum():
    # 2000 -> 20000 is 1.8M cents, far more than one pass evaluates
    got = optimise_price(constant_elasticity(-1.2), 2000.0)
    assert got.price == pytest.approx(12000.0, abs=0.01)
    smooth = constant_elasticity(-2.5)
    few = optimise_price(smooth, 3.0, Guardrails(ceiling=400.0), max_candidates=100)
    every = optimise_price(smooth, 3.0, Guardrails(ceiling=400.0))
    assert few.price == every.price == pytest.approx(5.0, abs=0.01)


def test_inelastic_demand_under_profit_goes_to_the_documented_top_of_the_range():
    got = optimise_price(constant_elasticity(-0.8), 2.0, current_price=3.0)
    assert got.price == DEFAULT_CEILING_MULTIPLE * 3.0  # 10x the larger of cost and price
    assert feasible_interval(2.0, Guardrails(), 3.0) == (2.0, 30.0)


def test_revenue_goes_to_the_lowest_allowed_price_when_elastic_and_the_highest_when_not():
    elastic, inelastic = constant_elasticity(-2.0), constant_elasticity(-0.5)
    got = optimise_price(elastic, 2.0, Guardrails(objective="revenue", floor=1.25))
    assert (got.price, got.binding, got.objective) == (1.25, ("floor",), "revenue")
    assert got.expected_profit < 0 < got.expected_revenue  # revenue may sell below cost
    assert optimise_price(elastic, 2.0, Guardrails(objective="revenue")).price == 2.0  # cost
    got = optimise_price(inelastic, 2.0, Guardrails(objective="revenue", ceiling=7.0))
    assert (got.price, got.binding) == (7.0, ("ceiling",))
    got = optimise_price(inelastic, 2.0, Guardrails(objective="revenue"), current_price=4.0)
    assert got.price == 40.0


# ---- guardrails that bind ---------------------------------------------------------------------
E, COST = -2.0, 2.0  # optimum 4.00
DEMAND = constant_elasticity(E)


@pytest.mark.parametrize(
    ("guardrails", "current", "price", "binding"),
    [
        (Guardrails(ceiling=3.5), None, 3.5, ("ceiling",)),
        (Guardrails(floor=4.5), None, 4.5, ("floor",)),
        (Guardrails(min_margin_pct=60), None, 5.0, ("min_margin_pct",)),
        (Guardrails(max_change_pct=10), 3.0, 3.3, ("max_change_pct",)),
        (Guardrails(max_change_pct=20), 6.0, 4.8, ("max_change_pct",)),
        (Guardrails(floor=4.5, min_margin_pct=55.55), None, 4.5, ("floor", "min_margin_pct")),
        (Guardrails(floor=4.5, min_margin_pct=50), None, 4.5, ("floor",)),
        (Guardrails(ceiling=3.3, max_change_pct=10), 3.0, 3.3, ("ceiling", "max_change_pct")),
        (Guardrails(ceiling=9.0, floor=1.0, max_change_pct=50), 4.0, 4.0, ()),
    ],
)
def test_a_guardrail_binds_when_the_optimum_lies_beyond_it(guardrails, current, price, binding):
    got = optimise_price(DEMAND, COST, guardrails, current_price=current)
    assert got.price == price
    assert got.binding == binding
    assert violations(got.price, COST, guardrails, current) == []
    assert got.expected_profit <= profit(4.0, COST, E) + 1e-12


def test_price_endings_are_respected_and_bind_when_they_move_the_price():
    for endings in [(0.99,), (0.49, 0.99), (0.0,), (0.05, 0.45, 0.95)]:
        got = optimise_price(DEMAND, COST, Guardrails(price_endings=endings))
        assert cents(got.price) % 100 in {cents(e) for e in endings}
        assert ("price_endings" in got.binding) == (got.price != 4.0)
    got = optimise_price(DEMAND, COST, Guardrails(price_endings=(0.99,)))
    assert (got.price, got.binding) == (3.99, ("price_endings",))
    got = optimise_price(
        DEMAND, COST, Guardrails(ceiling=5.5, price_endings=(0.99,)), current_price=5.0
    )
    assert got.price == 3.99
    # the ceiling and the ending together: the highest .99 under 3.50 is 2.99
    got = optimise_price(DEMAND, COST, Guardrails(ceiling=3.5, price_endings=(0.99,)))
    assert (got.price, got.binding) == (2.99, ("ceiling", "price_endings"))


def test_a_revenue_search_without_a_floor_reaches_down_to_an_allowed_ending():
    # cost 5.20, ceiling 5.50: the default start (cost) would leave no .99 in range; 4.99 is legal
    guardrails = Guardrails(objective="revenue", ceiling=5.5, price_endings=(0.99,))
    got = optimise_price(constant_elasticity(-0.5), 5.2, guardrails)
    assert got.price == 4.99


def test_the_decision_names_its_inputs_and_serialises():
    got = optimise_price(DEMAND, COST, Guardrails(ceiling=3.5), current_price=3.2)
    assert isinstance(got, PriceDecision)
    as_dict = got.to_dict()
    assert as_dict["price"] == 3.5 and as_dict["binding"] == ["ceiling"]
    assert as_dict["cost"] == COST and as_dict["current_price"] == 3.2
    assert as_dict["objective"] == "profit"


def test_elasticity_comes_from_the_caller_when_given_and_is_none_without_demand():
    got = optimise_price(DEMAND, COST, elasticity=lambda p: -2.0)
    assert got.elasticity == -2.0

    def cliff(p):
        return np.where(p < 3.0, 10.0, 0.0)

    got = optimise_price(cliff, 1.0, Guardrails(floor=3.5, objective="revenue"))
    assert got.expected_units == 0.0 and got.elasticity is None


# ---- candidates and violations ----------------------------------------------------------------
def test_candidates_are_whole_cents_with_allowed_endings():
    assert candidate_prices(1.001, 1.05, None).tolist() == [x / 100 for x in range(101, 106)]
    got = candidate_prices(0.5, 3.0, (0.99, 0.49))
    assert got.tolist() == [0.99, 1.49, 1.99, 2.49, 2.99]
    thin = candidate_prices(1.0, 100.0, None, max_candidates=11)
    assert len(thin) == 11 and thin[0] == 1.0 and thin[-1] == 100.0
    assert candidate_prices(1.01, 1.02, (0.99,)).size == 0


def test_violations_names_every_broken_guardrail():
    g = Guardrails(
        floor=3.0, ceiling=6.0, min_margin_pct=40, max_change_pct=10, price_endings=(0.49, 0.99)
    )
    assert violations(4.99, 2.9, g, 5.0) == []
    broken = ["floor", "min_margin_pct", "max_change_pct", "price_endings"]
    assert violations(2.5, 2.0, g, 5.0) == broken
    assert violations(6.5, 2.0, g, 6.0) == ["ceiling", "price_endings"]
    assert violations(4.49, 3.0, g, 4.6) == ["min_margin_pct"]
    assert violations(1.99, 2.0, Guardrails(), None) == ["cost"]  # profit never sells below cost
    assert violations(1.99, 2.0, Guardrails(objective="revenue"), None) == []
    assert violations(5.5, 1.0, Guardrails(max_change_pct=10), 5.0) == []  # float-exact edge


# ---- bad input ----------------------------------------------------------------------------------
def run(cost=COST, current=None, **guardrails):
    return optimise_price(DEMAND, cost, Guardrails(**guardrails), current_price=current)


@pytest.mark.parametrize(
    ("call", "field", "words"),
    [
        (lambda: run(cost=math.nan), "cost", "finite"),
        (lambda: run(cost=math.inf), "cost", "finite"),
        (lambda: run(cost=-1.0), "cost", "> 0"),
        (lambda: run(cost=0.0), "cost", "> 0"),
        (lambda: run(cost=None), "cost", "missing"),
        (lambda: run(cost="2"), "cost", "number"),
        (lambda: run(current=math.nan), "current_price", "finite"),
        (lambda: run(current=-3.0), "current_price", "> 0"),
        (lambda: run(current=0.0), "current_price", "> 0"),
        (lambda: run(floor=5.0, ceiling=3.0), "ceiling", "below floor"),
        (lambda: run(floor=1.001, ceiling=1.009), "ceiling", "whole-cent"),
        (lambda: run(ceiling=1.5), "ceiling", "below cost"),
        (lambda: run(min_margin_pct=50, ceiling=3.5), "min_margin_pct", "4.00"),
        (lambda: run(max_change_pct=10), "current_price", "required"),
        (lambda: run(current=3.0, max_change_pct=10, floor=5.0), "max_change_pct", "floor"),
        (lambda: run(current=9.0, max_change_pct=10, ceiling=5.0), "max_change_pct", "ceiling"),
        (lambda: run(current=1.0, max_change_pct=50), "max_change_pct", "cost"),
        (lambda: run(floor=2.0, ceiling=2.5, price_endings=(0.99,)), "price_endings", ".99"),
        (lambda: feasible_interval(COST, Guardrails(ceiling=1.0), None), "ceiling", "cost"),
        (lambda: violations(3.0, COST, Guardrails(max_change_pct=5), None), "current_price", ""),
        (lambda: violations(math.nan, COST, Guardrails(), None), "price", "finite"),
    ],
)
def test_bad_input_is_a_guardrail_error_naming_the_field(call, field, words):
    with pytest.raises(GuardrailError) as raised:
        call()
    assert raised.value.field == field
    assert field in str(raised.value) and words in str(raised.value)


@pytest.mark.parametrize(
    ("guardrails", "field"),
    [
        ({"floor": -1.0}, "floor"),
        ({"floor": 0.0}, "floor"),
        ({"floor": math.nan}, "floor"),
        ({"ceiling": math.inf}, "ceiling"),
        ({"ceiling": True}, "ceiling"),
        ({"max_change_pct": 0.0}, "max_change_pct"),
        ({"max_change_pct": 150.0}, "max_change_pct"),
        ({"max_change_pct": math.nan}, "max_change_pct"),
        ({"min_margin_pct": 100.0}, "min_margin_pct"),
        ({"min_margin_pct": -5.0}, "min_margin_pct"),
        ({"price_endings": (1.5,)}, "price_endings"),
        ({"price_endings": (-0.01,)}, "price_endings"),
        ({"price_endings": (0.995,)}, "price_endings"),
        ({"price_endings": (math.nan,)}, "price_endings"),
        ({"price_endings": ()}, "price_endings"),
        ({"objective": "volume"}, "objective"),
        ({"flooor": 1.0}, "flooor"),
    ],
)
def test_a_single_field_out_of_range_is_a_validation_error_at_that_field(guardrails, field):
    with pytest.raises(ValidationError) as raised:
        Guardrails(**guardrails)
    assert raised.value.errors()[0]["loc"][0] == field


@pytest.mark.parametrize(
    ("demand", "words"),
    [
        (lambda p: np.full_like(p, np.nan), "invalid values"),
        (lambda p: 5.0 - p, "invalid values"),  # negative above 5.00
        (lambda p: np.ones(3), "one expected-units value per price"),
    ],
)
def test_a_demand_model_returning_nonsense_is_refused(demand, words):
    with pytest.raises(ValueError, match=words):
        optimise_price(demand, COST)


# ---- property: never a broken guardrail, never a better allowed price ---------------------------
def money(low: float, high: float):
    """Whole cents mostly, sometimes an arbitrary float (bounds that fall between cents)."""
    return st.one_of(
        st.integers(round(low * 100), round(high * 100)).map(lambda c: c / 100),
        st.floats(low, high, allow_nan=False),
    )


@st.composite
def markets(draw):
    cost = draw(money(0.05, 2.0))
    current = draw(st.none() | money(0.05, 20.0))
    guardrails = {"objective": draw(st.sampled_from(["profit", "revenue"]))}
    if draw(st.booleans()):
        guardrails["floor"] = draw(money(0.01, 20.0))
    if draw(st.booleans()):
        guardrails["ceiling"] = draw(money(0.01, 20.0))
    if draw(st.booleans()):
        guardrails["max_change_pct"] = draw(st.floats(0.5, 100.0))
    if draw(st.booleans()):
        guardrails["min_margin_pct"] = draw(st.floats(0.0, 90.0))
    if draw(st.booleans()):
        endings = draw(st.lists(st.integers(0, 99), min_size=1, max_size=3))
        guardrails["price_endings"] = tuple(c / 100 for c in endings)
        guardrails["endings_fallback"] = draw(st.booleans())
    if draw(st.booleans()):
        guardrails["price_step"] = draw(st.sampled_from([0.02, 0.05, 0.1, 0.25, 1.0, 3.0]))
    if draw(st.booleans()):
        demand = constant_elasticity(draw(st.floats(-5.0, -0.5)), draw(st.floats(1.0, 1000.0)))
    else:
        knots = sorted(draw(st.lists(st.floats(0.01, 40.0), min_size=2, max_size=6, unique=True)))
        units = sorted(
            draw(st.lists(st.floats(0.0, 500.0), min_size=len(knots), max_size=len(knots))),
            reverse=True,
        )
        demand = lambda p, k=knots, u=units: np.interp(p, k, u)  # noqa: E731
    return cost, current, guardrails, demand


def objective_of(prices, cost, objective, demand):
    units = demand(prices)
    return (prices - cost) * units if objective == "profit" else prices * units


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markets())
def test_the_price_is_allowed_and_no_allowed_price_is_better(market):
    cost, current, spec, demand = market
    try:
        guardrails = Guardrails(**spec)
    except GuardrailError as error:  # refused at construction: ceiling < floor, or no ending
        if error.field == "price_endings":  # ... is a multiple of the step
            step = round(spec["price_step"] * 100)
            ends = {round(e * 100) for e in spec["price_endings"]}
            assert not any(c % 100 in ends for c in range(0, 100 * step, step))
            return
        assert error.field == "ceiling" and spec["ceiling"] < spec["floor"]
        return
    try:
        got = optimise_price(demand, cost, guardrails, current_price=current)
    except GuardrailError as error:
        if error.field == "current_price":
            assert current is None and "max_change_pct" in spec
            return
        # contradictory: no cent price from 0.01 to past every bound passes every check
        bounds = [cost, spec.get("floor", 0.0), spec.get("ceiling", 0.0)]
        bounds.append(2 * (current or 0.0))  # the max-change window's top, at most
        bounds.append(cost / (1 - spec.get("min_margin_pct", 0.0) / 100))
        for cent in range(1, math.ceil(max(bounds) * 100) + 101):
            assert violations(cent / 100, cost, guardrails, current), (error, cent)
        return

    lo, hi = feasible_interval(cost, guardrails, current)
    if got.notes:  # no allowed ending in [lo, hi]: quoted on the step, every other rule held
        assert guardrails.endings_fallback
        assert len(candidate_prices(lo, hi, guardrails.price_endings, 10**9,
                                    guardrails.price_step)) == 0  # fmt: skip
        guardrails = guardrails.model_copy(update={"price_endings": None})
    assert violations(got.price, cost, guardrails, current) == []
    assert lo <= got.price <= hi
    candidates = candidate_prices(
        lo, hi, guardrails.price_endings, max_candidates=10**9, step=guardrails.price_step
    )
    assert got.price in candidates
    for price in candidates[np.linspace(0, len(candidates) - 1, 40).astype(int)]:
        assert violations(float(price), cost, guardrails, current) == []
    value = got.expected_profit if spec["objective"] == "profit" else got.expected_revenue
    best = objective_of(candidates, cost, spec["objective"], demand).max()
    assert value >= best - 1e-9 * max(abs(best), 1e-12)
