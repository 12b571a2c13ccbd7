"""The allowed interval: the guardrails' bounds placed on the cent grid, and the search range.

The search range. The guardrails give lower and upper bounds; where a side has none:

* no ceiling and no max-change window: the search stops at `DEFAULT_CEILING_MULTIPLE` (10) times
  the largest of cost, current price, floor and the min-margin price (and at least a dollar, or
  one cycle of the step and endings, above its lowest price, so every ending fits). A
  constant-elasticity curve q = A * p**e has its profit optimum at cost * e / (1 + e): 4.33x
  cost at e = -1.3, 9.3x at e = -1.12, so every such optimum down to e ~ -1.12 lies inside.
  Less elastic demand wants an ever higher price and gets the top of the range;
* no floor and no min margin under the revenue objective: the search starts at cost, or at the
  lowest upper bound if the guardrails put every allowed price below cost, or, with a price
  step or endings, at the highest allowed price at or below that. Under the profit objective cost is
  always the lowest price.

These defaults only close open sides: they never turn guardrails that allow a price into an
error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .clashes import clash_error
from .guardrails import (
    Guardrails,
    Pattern,
    Rule,
    checked_guardrails,
    cost_rule,
    optional_positive_number,
    positive_number,
    rules,
)

DEFAULT_CEILING_MULTIPLE = 10.0  # the search's top without a ceiling, as a multiple (see above)
_MAX_NUDGE = 1_000  # a guessed cent bound is off by one or two; more means a broken check


@dataclass(frozen=True)
class Interval:
    """The allowed interval in cents, which bound came from which guardrail, and a wider range
    (`free_lo`..`reach`) for the unconstrained optimum that `binding` compares with."""

    lo: int
    hi: int
    lower: tuple[tuple[str, int], ...]
    upper: tuple[tuple[str, int], ...]
    free_lo: int
    reach: int


def allowed_interval(cost: float, guardrails: Guardrails, current: float | None) -> Interval:
    """The cents every guardrail allows, within the default search range where a side has none;
    GuardrailError naming the field to fix when they allow no price."""
    g = guardrails
    bounds = rules(cost, g, current)
    lower = [(r, _lowest_cent(r)) for r in bounds if r.side == "lower"]
    upper = [(r, _highest_cent(r)) for r in bounds if r.side == "upper"]
    clashes = [(lo, up) for lo, lo_c in lower for up, up_c in upper if lo_c > up_c]
    if clashes:
        raise clash_error(clashes, current)
    lows = [c for _, c in lower]
    cost_cent = _lowest_cent(cost_rule(cost))
    if g.objective == "revenue" and g.floor is None and g.min_margin_pct is None:
        lows.append(_default_start(min([cost_cent, *(c for _, c in upper)]), g.pattern))
    lo = max(lows)
    top = max(cost, current or 0.0, *(r.value for r, _ in lower))
    if upper:
        hi = min(c for _, c in upper)
    else:
        cycle = max(100, g.pattern.period if g.pattern else 1)
        hi = max(math.floor(DEFAULT_CEILING_MULTIPLE * top * 100), lo + cycle - 1)  # every ending
    reach_from = max(top, *(r.value for r, _ in upper)) if upper else top
    if lo > hi:  # unreachable: the clashes above cover every empty case; a bug if it happens
        raise RuntimeError(f"the search range [{lo / 100}, {hi / 100}] is empty")
    return Interval(
        lo=lo,
        hi=hi,
        lower=tuple((r.name, c) for r, c in lower),
        upper=tuple((r.name, c) for r, c in upper),
        free_lo=cost_cent if g.objective == "profit" else 1,
        reach=max(hi, math.floor(DEFAULT_CEILING_MULTIPLE * reach_from * 100)),
    )


def feasible_interval(
    cost: float, guardrails: Guardrails, current_price: float | None
) -> tuple[float, float]:
    """[lo, hi]: the lowest and highest whole-cent price every guardrail allows, before the price
    step and endings, within the default search range where a side has no guardrail (module
    docstring). GuardrailError naming the field when the guardrails allow no price."""
    cost = positive_number("cost", cost)
    current = optional_positive_number("current_price", current_price)
    box = allowed_interval(cost, checked_guardrails(guardrails), current)
    return box.lo / 100, box.hi / 100


def _unplaceable(rule: Rule) -> RuntimeError:
    return RuntimeError(f"cannot place the {rule.name} bound {rule.value} on the cent grid")


def _lowest_cent(rule: Rule) -> int:
    """The lowest cent price (>= 1) that `rule` accepts."""
    cents = max(1, math.ceil(rule.value * 100))
    for _ in range(_MAX_NUDGE):
        if rule.ok(cents / 100):
            break
        cents += 1
    else:
        raise _unplaceable(rule)
    for _ in range(_MAX_NUDGE):
        if cents == 1 or not rule.ok((cents - 1) / 100):
            return cents
        cents -= 1
    raise _unplaceable(rule)


def _highest_cent(rule: Rule) -> int:
    """The highest cent price that `rule` accepts; 0 when not even one cent is allowed."""
    cents = math.floor(rule.value * 100)
    for _ in range(_MAX_NUDGE):
        if cents < 1 or rule.ok(cents / 100):
            break
        cents -= 1
    else:
        raise _unplaceable(rule)
    cents = max(cents, 0)
    for _ in range(_MAX_NUDGE):
        if not rule.ok((cents + 1) / 100):
            return cents
        cents += 1
    raise _unplaceable(rule)


def _default_start(cents: int, pattern: Pattern | None) -> int:
    """The revenue search's default start at or below `cents`: `cents` itself, or with a step or
    endings the highest allowed price at or below it, so that the default never empties the
    range."""
    if pattern is None:
        return cents
    below = max(cents - (cents - o) % pattern.period for o in pattern.offsets)
    return below if below >= 1 else cents
