"""The entry point: `optimise_price` puts the pieces together (checked inputs, the allowed
interval and its price grid, the search, a last check against every guardrail, the elasticity and
the binding guardrails) into one `PriceDecision`.

Price endings with `endings_fallback` are a preference: when no price with an allowed ending
fits the other guardrails, the price is searched on the step grid instead, checked against every
guardrail but the endings, and the decision's `notes` say so. Every other guardrail stays a rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from .binding import binding_guardrails
from .grid import MAX_CANDIDATES, Grid, allowed_grid
from .guardrails import (
    GuardrailError,
    Guardrails,
    GuardrailViolation,
    checked_guardrails,
    optional_positive_number,
    positive_number,
    violations,
)
from .interval import Interval, allowed_interval
from .search import Demand, expected_units, optimum

MIN_CANDIDATES = 100  # fewer per pass and the coarse-to-fine zoom would not shrink
ELASTICITY_STEP = 1e-4  # half-width, in log price, of the numerical elasticity's difference


@dataclass(frozen=True)
class PriceDecision:
    price: float  # currency units, a whole number of cents
    expected_units: float
    expected_profit: float  # (price - cost) * units
    expected_revenue: float  # price * units
    elasticity: float | None  # d log units / d log price at `price`; None where demand is 0
    binding: tuple[str, ...]  # the guardrails that bind at `price` (see binding.py)
    current_price: float | None
    cost: float
    objective: str
    notes: tuple[str, ...] = ()  # what a reader of the quote must know (an ending dropped)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["binding"] = list(self.binding)
        out["notes"] = list(self.notes)
        return out


def optimise_price(
    demand: Demand,
    cost: float,
    guardrails: Guardrails | None = None,
    current_price: float | None = None,
    elasticity: Callable[[float], float] | None = None,
    *,
    max_candidates: int = MAX_CANDIDATES,
) -> PriceDecision:
    """The allowed whole-cent price that maximises expected profit (or revenue).

    `demand` maps a vector of prices to expected units (finite, >= 0; anything else is a
    ValueError). `elasticity`, when given, is the curve's own d log units / d log price;
    otherwise it is a central difference in log price of `demand` (None where demand is 0).
    `max_candidates` is the number of demand evaluations per search pass (search.py).
    """
    cost = positive_number("cost", cost)
    current = optional_positive_number("current_price", current_price)
    g = checked_guardrails(guardrails)
    if max_candidates < MIN_CANDIDATES:
        raise ValueError(f"max_candidates must be at least {MIN_CANDIDATES}, got {max_candidates}")
    box = allowed_interval(cost, g, current)
    g, grid, notes = _grid(box, g)
    chosen = optimum(demand, cost, g.objective, grid, max_candidates)
    price = chosen[0] / 100
    broken = violations(price, cost, g, current)
    if broken or not box.lo <= chosen[0] <= box.hi:
        raise GuardrailViolation(
            f"the optimiser chose {price:.2f}, which breaks {broken or 'the search range'}"
        )
    units = float(expected_units(demand, np.array([price]))[0])
    return PriceDecision(
        price=price,
        expected_units=units,
        expected_profit=(price - cost) * units,
        expected_revenue=price * units,
        elasticity=_elasticity(demand, price, elasticity),
        binding=binding_guardrails(demand, cost, g, box, grid, chosen, max_candidates),
        current_price=current,
        cost=cost,
        objective=g.objective,
        notes=notes,
    )


def _grid(box: Interval, g: Guardrails) -> tuple[Guardrails, Grid, tuple[str, ...]]:
    """The grid to search (and the guardrails its price is checked against): the step and
    endings; with `endings_fallback`, the step alone where no ending fits, and a note."""
    field = "price_step" if g.price_endings is None else "price_endings"
    try:
        return g, allowed_grid(box, g.pattern, field), ()
    except GuardrailError as error:
        if error.field != "price_endings" or not g.endings_fallback:
            raise
    plain = g.model_copy(update={"price_endings": None, "endings_fallback": False})
    grid = allowed_grid(box, plain.pattern, field="price_step")
    step = plain.price_step or 0.01
    shown = " or ".join(f".{c:02d}" for c in g.ending_cents or ())
    note = (
        f"no allowed price between {box.lo / 100:.2f} and {box.hi / 100:.2f} ends in {shown}: "
        f"quoted on the {step:.2f} step instead"
    )
    return plain, grid, (note,)


def _elasticity(
    demand: Demand, price: float, elasticity: Callable[[float], float] | None
) -> float | None:
    if elasticity is not None:
        value = float(elasticity(price))
        if not math.isfinite(value):
            raise ValueError(f"the elasticity function returned {value} at price {price:.2f}")
        return value
    step = ELASTICITY_STEP
    units = expected_units(demand, price * np.exp(np.array([-step, step])))
    if units.min() <= 0:
        return None  # no demand, no elasticity
    return float((math.log(units[1]) - math.log(units[0])) / (2 * step))
