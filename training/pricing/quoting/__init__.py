"""The guard-railed price optimiser: a demand curve, a cost and guardrails -> one allowed price.

Given the demand curve of one item in one store (a vectorised callable: prices -> expected units),
the item's cost, its current price and the business's `Guardrails`, `optimise_price` returns the
whole-cent price (on the price step, with an allowed ending) that maximises expected profit,
`(price - cost) * units` (or expected revenue, `price * units`, with `objective="revenue"`), with
the expected units, profit and revenue, the elasticity at that price and the guardrails that bind
there. A pricing model is only trusted in
production if it can never publish a price the business forbade, so:

* every returned price is checked against every guardrail (`violations`) before it leaves; a
  violation there is a bug, raised as `GuardrailViolation`, never a price;
* an impossible guardrail set is a `GuardrailError` whose `.field` names the field to fix
  ("ceiling", "min_margin_pct", "max_change_pct", "price_step", "price_endings", "cost",
  "current_price"); a
  single field out of range is pydantic's `ValidationError`, located at that field;
* costs and prices must be finite and > 0; NaN, infinities and booleans are refused by name.

The package lives in training/pricing, not serving/, because the pricing model's own `quote`
(predict.py) and the pricing gate's behavioural tests (gate.py) call it, and training/ may not
import serving/. Import its public names from here. Its modules, in the order a quote uses them:

  guardrails.py  `Guardrails`, the allowed set, the checks (`violations`) and the errors
  clashes.py     the wording of guardrails that allow no price
  house.py       the shop's step and endings (AISLE_QUOTING__) on a request's guardrails, `money`
  interval.py    the bounds placed on whole cents, and the search range (`feasible_interval`)
  grid.py        the allowed prices of an interval: step and endings (`candidate_prices`)
  search.py      the coarse-to-fine search for the best price on a grid
  binding.py     which guardrails bind at the chosen price
  optimise.py    `optimise_price` and its `PriceDecision`
"""

from .grid import MAX_CANDIDATES, candidate_prices
from .guardrails import GuardrailError, Guardrails, GuardrailViolation, Objective, violations
from .house import house_guardrails, money
from .interval import DEFAULT_CEILING_MULTIPLE, feasible_interval
from .optimise import PriceDecision, optimise_price
from .search import Demand

__all__ = [
    "DEFAULT_CEILING_MULTIPLE",
    "MAX_CANDIDATES",
    "Demand",
    "GuardrailError",
    "GuardrailViolation",
    "Guardrails",
    "Objective",
    "PriceDecision",
    "candidate_prices",
    "feasible_interval",
    "house_guardrails",
    "money",
    "optimise_price",
    "violations",
]
