"""Which guardrails bind at the chosen price: those that moved it away from where the demand
curve alone would put it.

A guardrail binds when (1) the chosen price is the lowest (for floor, min margin and the
max-change window's lower edge) or highest (ceiling, the window's upper edge) allowed price, i.e.
within one cent, or one ending step, of the bound; (2) that guardrail is the tightest bound on
that side (ties all bind); and (3) the optimum without any guardrail, searched over a range
reaching well past every bound (one cent, or cost under the profit objective, up to 10x the
largest price involved), lies strictly beyond that bound. "price_endings" binds when the best
price of the step in the guardrails' interval, endings ignored, is strictly better than the
chosen one; "price_step" when the best whole-cent price there is strictly better than the best of
the step.
"""

from __future__ import annotations

from .grid import Grid
from .guardrails import Guardrails
from .interval import Interval
from .search import Demand, optimum


def binding_guardrails(
    demand: Demand,
    cost: float,
    guardrails: Guardrails,
    box: Interval,
    grid: Grid,
    chosen: tuple[int, float],
    budget: int,
) -> tuple[str, ...]:
    """The guardrails that bind at the chosen price (rule in the module docstring)."""
    objective = guardrails.objective
    cents = chosen[0]
    free, _ = optimum(demand, cost, objective, Grid(box.free_lo, box.reach, None), budget)
    names = []
    if cents == int(grid.cents(0)):
        names += [n for n, c in box.lower if n != "cost" and c == box.lo and free < c]
    if cents == int(grid.cents(grid.size - 1)):
        names += [n for n, c in box.upper if c == box.hi and free > c]
    on_step = chosen[1]
    if guardrails.price_endings is not None:
        step = Grid(box.lo, box.hi, guardrails.step_pattern)
        _, on_step = optimum(demand, cost, objective, step, budget)
        if on_step > chosen[1]:
            names.append("price_endings")
    if guardrails.price_step is not None and guardrails.price_step != 0.01:
        _, plain = optimum(demand, cost, objective, Grid(box.lo, box.hi, None), budget)
        if plain > on_step:
            names.append("price_step")
    return tuple(dict.fromkeys(names))
