"""The guard-railed price optimiser: a demand curve, a cost and guardrails -> one allowed price.

Given the demand curve of one item in one store (a vectorised callable: prices -> expected units),
the item's cost, its current price and the business's `Guardrails`, `optimise_price` returns the
whole-cent price that maximises expected profit, `(price - cost) * units` (or expected revenue,
`price * units`, with `objective="revenue"`), with the expected units, profit and revenue, the
elasticity at that price and the guardrails that bind there. A pricing model is only trusted in
production if it can never publish a price the business forbade, so:

* every returned price is checked against every guardrail (`violations`) before it leaves; a
  violation there is a bug, raised as `GuardrailViolation`, never a price;
* an impossible guardrail set is a `GuardrailError` whose `.field` names the field to fix
  ("ceiling", "min_margin_pct", "max_change_pct", "price_endings", "cost", "current_price"); a
  single field out of range is pydantic's `ValidationError`, located at that field;
* costs and prices must be finite and > 0; NaN, infinities and booleans are refused by name.

The allowed set. A price is allowed when it is a whole number of cents and

* floor <= price <= ceiling (each when given);
* (price - cost) / price * 100 >= min_margin_pct, i.e. price >= cost / (1 - min_margin_pct/100);
* |price / current_price - 1| * 100 <= max_change_pct (which therefore needs current_price);
* its cents are one of `price_endings` (e.g. (0.99, 0.49): x.99 or x.49), when given;
* under the profit objective, price >= cost: a price below cost loses on every unit sold, so a
  ceiling or max-change window entirely below cost is a `GuardrailError`, and `violations`
  reports such a price as breaking "cost". The revenue objective has no such rule.

Every check allows a slack of 1e-9 (relative; 1e-7 percentage points for the percentages), far
below a cent, so that e.g. a 10% change from 5.00 allows exactly 5.50 despite float rounding. The
candidate filter and `violations` use the very same checks: the interval's ends are the lowest
and highest cent each check accepts, so a price the filter accepts always passes validation.

The search range. The guardrails give lower and upper bounds; where a side has none:

* no ceiling and no max-change window: the search stops at `DEFAULT_CEILING_MULTIPLE` (10) times
  the largest of cost, current price, floor and the min-margin price (and at least a dollar above
  its lowest price, so every ending fits). A constant-elasticity curve q = A * p**e has its
  profit optimum at cost * e / (1 + e): 4.33x cost at e = -1.3, 9.3x at e = -1.12, so every such
  optimum down to e ~ -1.12 lies inside. Less elastic demand wants an ever higher price and gets
  the top of the range;
* no floor and no min margin under the revenue objective: the search starts at cost, or at the
  lowest upper bound if the guardrails put every allowed price below cost, or, with price
  endings, at the highest allowed ending at or below that. Under the profit objective cost is
  always the lowest price.

These defaults only close open sides: they never turn guardrails that allow a price into an
error.

The search. Prices are integer cents internally. When the range holds at most `max_candidates`
allowed prices (20,001 by default) demand is evaluated at every one of them and the best wins
(ties go to the lower price); otherwise a coarse grid of `max_candidates` points is evaluated and
the search zooms, at cent resolution, into the neighbourhoods of the best `REFINE_TOP` coarse
points, repeating until a neighbourhood is small enough to evaluate whole.

`binding`. A guardrail binds when (1) the chosen price is the lowest (for floor, min margin and
the max-change window's lower edge) or highest (ceiling, the window's upper edge) allowed price,
i.e. within one cent, or one ending step, of the bound; (2) that guardrail is the tightest bound
on that side (ties all bind); and (3) the optimum without any guardrail, searched over a range
reaching well past every bound (one cent, or cost under the profit objective, up to 10x the
largest price involved), lies strictly beyond that bound. "price_endings" binds when the best
whole-cent price in the guardrails' interval, endings ignored, is strictly better than the
chosen one.
"""

from __future__ import annotations

import math
import numbers
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_CEILING_MULTIPLE = 10.0  # the search's top without a ceiling, as a multiple (see above)
MAX_CANDIDATES = 20_001  # demand evaluations per search pass
MIN_CANDIDATES = 100  # fewer per pass and the coarse-to-fine zoom would not shrink
REFINE_TOP = 8  # coarse winners whose neighbourhoods are searched at cent resolution
SLACK = 1e-9  # relative slack on the floor, ceiling and cost checks
MAX_SLACK = 1e-4  # ... and never more than a hundredth of a cent
PCT_SLACK = 1e-7  # slack, in percentage points, on the margin and max-change checks
ELASTICITY_STEP = 1e-4  # half-width, in log price, of the numerical elasticity's difference

Objective = Literal["profit", "revenue"]
Demand = Callable[[np.ndarray], np.ndarray]


class GuardrailError(ValueError):
    """Bad or contradictory guardrails or inputs. `.field` names the field to fix."""

    def __init__(self, field: str, message: str) -> None:
        if field not in message:
            message = f"{field}: {message}"
        super().__init__(message)
        self.field = field
        self.message = message


class GuardrailViolation(RuntimeError):
    """A chosen price broke a guardrail: a bug in the optimiser, never a price to publish."""


_Amount = Annotated[float, Field(gt=0, allow_inf_nan=False, strict=True)]
_Ending = Annotated[float, Field(allow_inf_nan=False, strict=True)]


class Guardrails(BaseModel):
    """What the business allows a price to be (all optional), and what the price maximises."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    floor: _Amount | None = None
    ceiling: _Amount | None = None
    max_change_pct: float | None = Field(
        default=None, gt=0, le=100, allow_inf_nan=False, strict=True
    )
    min_margin_pct: float | None = Field(
        default=None, ge=0, lt=100, allow_inf_nan=False, strict=True
    )
    price_endings: tuple[_Ending, ...] | None = None
    objective: Objective = "profit"

    def __init__(self, **data: Any) -> None:
        # Cross-field checks raise GuardrailError, which pydantic would wrap if raised inside its
        # own validators; `feasible_interval` repeats them for models built another way.
        super().__init__(**data)
        if self.floor is not None and self.ceiling is not None and self.ceiling < self.floor:
            raise GuardrailError("ceiling", f"ceiling {self.ceiling} is below floor {self.floor}")

    @field_validator("price_endings")
    @classmethod
    def _endings_are_cents(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if value is None:
            return None
        return tuple(cents / 100 for cents in _ending_cents(value))

    @property
    def ending_cents(self) -> tuple[int, ...] | None:
        """The allowed endings as cents (0..99), sorted; None when every cent is allowed."""
        return None if self.price_endings is None else _ending_cents(self.price_endings)


@dataclass(frozen=True)
class PriceDecision:
    price: float  # currency units, a whole number of cents
    expected_units: float
    expected_profit: float  # (price - cost) * units
    expected_revenue: float  # price * units
    elasticity: float | None  # d log units / d log price at `price`; None where demand is 0
    binding: tuple[str, ...]  # the guardrails that bind at `price` (see the module docstring)
    current_price: float | None
    cost: float
    objective: str

    def to_dict(self) -> dict:
        out = asdict(self)
        out["binding"] = list(self.binding)
        return out


# ---- checks -----------------------------------------------------------------------------------
def _slack(bound: float) -> float:
    return min(SLACK * max(1.0, abs(bound)), MAX_SLACK)


def _number(field: str, value: Any) -> float:
    """`value` as a finite float > 0, or GuardrailError naming `field`."""
    if value is None:
        raise GuardrailError(field, f"{field} is missing: the optimiser needs it")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise GuardrailError(field, f"{field} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise GuardrailError(field, f"{field} must be a finite number, got {number}")
    if number <= 0:
        raise GuardrailError(field, f"{field} must be > 0, got {number}")
    return number


def _optional_number(field: str, value: Any) -> float | None:
    return None if value is None else _number(field, value)


def _ending_cents(endings: Iterable[float]) -> tuple[int, ...]:
    """Endings such as (0.99, 0.49) as sorted, distinct cents; ValueError naming price_endings."""
    cents = set()
    for ending in endings:
        if isinstance(ending, bool) or not isinstance(ending, numbers.Real):
            raise ValueError(f"price_endings must be numbers, got {ending!r}")
        value = float(ending)
        if not (math.isfinite(value) and 0 <= value < 1):
            raise ValueError(f"price_endings must each lie in [0, 1), got {ending!r}")
        cent = round(value * 100)
        if abs(value * 100 - cent) > 1e-6 or cent > 99:
            raise ValueError(
                f"price_endings must have at most two decimals (cents, e.g. 0.99), got {ending!r}"
            )
        cents.add(cent)
    if not cents:
        raise ValueError("price_endings is empty: give at least one ending, or None for any cent")
    return tuple(sorted(cents))


def _guardrails(guardrails: Guardrails | None) -> Guardrails:
    if guardrails is None:
        return Guardrails()
    if not isinstance(guardrails, Guardrails):
        raise TypeError(f"guardrails must be a Guardrails, got {type(guardrails).__name__}")
    return guardrails


@dataclass(frozen=True)
class _Rule:
    """One monotone check: a lower or upper bound on the price, and the exact test for it."""

    name: str  # the field it comes from ("cost" for the profit objective's price >= cost)
    side: Literal["lower", "upper"]
    value: float  # the bound in currency units (messages, and the first guess of its cent)
    ok: Callable[[float], bool]


def _rules(cost: float, guardrails: Guardrails, current: float | None) -> list[_Rule]:
    g = guardrails
    rules: list[_Rule] = []
    if g.objective == "profit":
        rules.append(_Rule("cost", "lower", cost, lambda p: p >= cost - _slack(cost)))
    if g.floor is not None:
        floor = g.floor
        rules.append(_Rule("floor", "lower", floor, lambda p: p >= floor - _slack(floor)))
    if g.ceiling is not None:
        ceiling = g.ceiling
        rules.append(_Rule("ceiling", "upper", ceiling, lambda p: p <= ceiling + _slack(ceiling)))
    if g.min_margin_pct is not None:
        margin = g.min_margin_pct
        rules.append(
            _Rule(
                "min_margin_pct",
                "lower",
                cost / (1 - margin / 100),
                lambda p: (p - cost) / p * 100 >= margin - PCT_SLACK,
            )
        )
    if g.max_change_pct is not None:
        if current is None:
            raise GuardrailError(
                "current_price",
                "current_price is required: max_change_pct limits the change from it",
            )
        change = g.max_change_pct
        rules.append(
            _Rule(
                "max_change_pct",
                "lower",
                current * (1 - change / 100),
                lambda p: (p / current - 1) * 100 >= -change - PCT_SLACK,
            )
        )
        rules.append(
            _Rule(
                "max_change_pct",
                "upper",
                current * (1 + change / 100),
                lambda p: (p / current - 1) * 100 <= change + PCT_SLACK,
            )
        )
    return rules


def violations(
    price: float, cost: float, guardrails: Guardrails, current_price: float | None
) -> list[str]:
    """The guardrails `price` breaks (empty when it is allowed): every decision is checked so.

    Names are guardrail fields ("floor", "ceiling", "min_margin_pct", "max_change_pct",
    "price_endings"), plus "cost" for a price below cost under the profit objective.
    """
    price = _number("price", price)
    cost = _number("cost", cost)
    current = _optional_number("current_price", current_price)
    g = _guardrails(guardrails)
    broken = [r.name for r in _rules(cost, g, current) if not r.ok(price)]
    endings = g.ending_cents
    if endings is not None:
        cents = round(price * 100)
        if abs(price * 100 - cents) > 1e-6 or cents % 100 not in endings:
            broken.append("price_endings")
    return list(dict.fromkeys(broken))


# ---- the allowed interval ---------------------------------------------------------------------
_MAX_NUDGE = 1_000  # a guessed cent bound is off by one or two; more means a broken check


def _unplaceable(rule: _Rule) -> RuntimeError:
    return RuntimeError(f"cannot place the {rule.name} bound {rule.value} on the cent grid")


def _lowest_cent(rule: _Rule) -> int:
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


def _highest_cent(rule: _Rule) -> int:
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


@dataclass(frozen=True)
class _Interval:
    """The allowed interval in cents, which bound came from which guardrail, and a wider range
    (`free_lo`..`reach`) for the unconstrained optimum that `binding` compares with."""

    lo: int
    hi: int
    lower: tuple[tuple[str, int], ...]
    upper: tuple[tuple[str, int], ...]
    free_lo: int
    reach: int


def _amount(value: float) -> str:
    """A bound for a message: cents, or up to four decimals where it is not a whole cent."""
    return f"{value:.2f}" if abs(value * 100 - round(value * 100)) < 1e-6 else f"{value:.4f}"


def _clash_field(lower: _Rule, upper: _Rule) -> str:
    if "max_change_pct" in (lower.name, upper.name):
        return "max_change_pct"
    return "min_margin_pct" if lower.name == "min_margin_pct" else "ceiling"


# several clashes at once: report the most basic first (floor/ceiling, then cost, margin, change)
_CLASH_ORDER = {"floor": 0, "cost": 1, "min_margin_pct": 2, "max_change_pct": 3}


def _clash_rank(clash: tuple[_Rule, _Rule]) -> int:
    lower, upper = clash
    return 3 if upper.name == "max_change_pct" else _CLASH_ORDER[lower.name]


def _clash(lower: _Rule, upper: _Rule, current: float | None) -> GuardrailError:
    """The error for a lower bound above an upper bound, naming the field to fix."""
    field = _clash_field(lower, upper)
    if field == "max_change_pct":
        window, other = (lower, upper) if lower.name == "max_change_pct" else (upper, lower)
        side = "above" if window is lower else "below"
        what = {"cost": "cost", "floor": "the floor", "ceiling": "the ceiling"}.get(
            other.name, "the min-margin price"
        )
        return GuardrailError(
            field,
            f"max_change_pct allows only prices {side} {_amount(window.value)} (current price "
            f"{current}), but {what} is {_amount(other.value)}: no price is allowed",
        )
    if field == "min_margin_pct":
        return GuardrailError(
            field,
            f"min_margin_pct needs a price of at least {_amount(lower.value)}, above the ceiling "
            f"{upper.value}: no price is allowed",
        )
    if lower.name == "cost" and upper.value < lower.value:
        return GuardrailError(
            field,
            f"ceiling {upper.value} is below cost {lower.value}: every allowed price loses "
            "money, and the profit objective never prices below cost",
        )
    if upper.value < lower.value:
        return GuardrailError(field, f"ceiling {upper.value} is below floor {lower.value}")
    return GuardrailError(
        field,
        f"no whole-cent price lies between {lower.name} {lower.value} and ceiling {upper.value}",
    )


def _default_start(cents: int, endings: tuple[int, ...] | None) -> int:
    """The revenue search's default start at or below `cents`: `cents` itself, or with endings
    the highest allowed price at or below it, so that the default never empties the range."""
    if endings is None:
        return cents
    below = max((cents // 100) * 100 + e - (100 if e > cents % 100 else 0) for e in endings)
    return below if below >= 1 else cents


def _interval(cost: float, guardrails: Guardrails, current: float | None) -> _Interval:
    g = guardrails
    rules = _rules(cost, g, current)
    lower = [(r, _lowest_cent(r)) for r in rules if r.side == "lower"]
    upper = [(r, _highest_cent(r)) for r in rules if r.side == "upper"]
    clashes = [(lo, up) for lo, lo_c in lower for up, up_c in upper if lo_c > up_c]
    if clashes:
        raise _clash(*min(clashes, key=_clash_rank), current)
    lows = [c for _, c in lower]
    cost_cent = _lowest_cent(_Rule("cost", "lower", cost, lambda p: p >= cost - _slack(cost)))
    if g.objective == "revenue" and g.floor is None and g.min_margin_pct is None:
        lows.append(_default_start(min([cost_cent, *(c for _, c in upper)]), g.ending_cents))
    lo = max(lows)
    top = max(cost, current or 0.0, *(r.value for r, _ in lower))
    if upper:
        hi = min(c for _, c in upper)
    else:
        hi = max(math.floor(DEFAULT_CEILING_MULTIPLE * top * 100), lo + 99)  # every ending
    reach_from = max(top, *(r.value for r, _ in upper)) if upper else top
    if lo > hi:  # unreachable: the clashes above cover every empty case; a bug if it happens
        raise RuntimeError(f"the search range [{lo / 100}, {hi / 100}] is empty")
    return _Interval(
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
    """[lo, hi]: the lowest and highest whole-cent price every guardrail allows, before price
    endings, within the default search range where a side has no guardrail (module docstring).
    GuardrailError naming the field when the guardrails allow no price."""
    cost = _number("cost", cost)
    current = _optional_number("current_price", current_price)
    box = _interval(cost, _guardrails(guardrails), current)
    return box.lo / 100, box.hi / 100


# ---- candidates -------------------------------------------------------------------------------
class _Grid:
    """The allowed cent prices in [lo, hi] (every cent, or those with an allowed ending), sorted
    and indexable without listing them: the k-th is found arithmetically."""

    def __init__(self, lo: int, hi: int, endings: tuple[int, ...] | None) -> None:
        self.endings = np.arange(100) if endings is None else np.asarray(endings, dtype=np.int64)
        ends = self.endings.tolist()
        self.base = (lo // 100) * 100
        self.skip = bisect_left(ends, lo - self.base)
        upto = ((hi - self.base) // 100) * len(ends) + bisect_right(ends, (hi - self.base) % 100)
        self.size = max(0, upto - self.skip) if hi >= lo else 0

    def cents(self, index: np.ndarray | int) -> np.ndarray:
        n = np.asarray(index, dtype=np.int64) + self.skip
        m = len(self.endings)
        return self.base + 100 * (n // m) + self.endings[n % m]

    def spread(self, count: int) -> np.ndarray:
        """At most `count` indices spread evenly over the grid, both ends included."""
        if self.size <= count:
            return np.arange(self.size)
        return np.unique(np.linspace(0, self.size - 1, count).round().astype(np.int64))


def _endings_text(endings: tuple[int, ...]) -> str:
    return ", ".join(f".{cents:02d}" for cents in endings)


def _grid(box: _Interval, endings: tuple[int, ...] | None) -> _Grid:
    grid = _Grid(box.lo, box.hi, endings)
    if grid.size == 0:
        assert endings is not None  # a non-empty interval always holds a cent
        raise GuardrailError(
            "price_endings",
            f"price_endings ({_endings_text(endings)}): no price between {box.lo / 100:.2f} "
            f"and {box.hi / 100:.2f} has an allowed ending",
        )
    return grid


def candidate_prices(
    lo: float,
    hi: float,
    endings: tuple[float, ...] | None,
    max_candidates: int = MAX_CANDIDATES,
) -> np.ndarray:
    """Cent prices in [lo, hi] (with an allowed ending when endings are given), ascending; when
    there are more than `max_candidates`, that many spread evenly, both ends included."""
    lo = _number("lo", lo)
    hi = _number("hi", hi)
    if max_candidates < 2:
        raise ValueError(f"max_candidates must be at least 2, got {max_candidates}")
    try:
        ending_cents = None if endings is None else _ending_cents(endings)
    except ValueError as error:
        raise GuardrailError("price_endings", str(error)) from None
    grid = _Grid(
        max(1, math.ceil(round(lo * 100, 6))), math.floor(round(hi * 100, 6)), ending_cents
    )
    return grid.cents(grid.spread(max_candidates)) / 100


# ---- search -----------------------------------------------------------------------------------
def _units(demand: Demand, prices: np.ndarray) -> np.ndarray:
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


def _scorer(
    demand: Demand, cost: float, objective: Objective, grid: _Grid
) -> Callable[[np.ndarray], np.ndarray]:
    def score(index: np.ndarray) -> np.ndarray:
        prices = grid.cents(index) / 100
        units = _units(demand, prices)
        return (prices - cost) * units if objective == "profit" else prices * units

    return score


def _best_index(grid: _Grid, score: Callable[[np.ndarray], np.ndarray], budget: int) -> int:
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


def _optimum(
    demand: Demand, cost: float, objective: Objective, grid: _Grid, budget: int
) -> tuple[int, float]:
    """The best cent price on `grid` and its objective value."""
    score = _scorer(demand, cost, objective, grid)
    index = _best_index(grid, score, budget)
    return int(grid.cents(index)), float(score(np.array([index]))[0])


def _elasticity(
    demand: Demand, price: float, elasticity: Callable[[float], float] | None
) -> float | None:
    if elasticity is not None:
        value = float(elasticity(price))
        if not math.isfinite(value):
            raise ValueError(f"the elasticity function returned {value} at price {price:.2f}")
        return value
    step = ELASTICITY_STEP
    units = _units(demand, price * np.exp(np.array([-step, step])))
    if units.min() <= 0:
        return None  # no demand, no elasticity
    return float((math.log(units[1]) - math.log(units[0])) / (2 * step))


def _binding(
    demand: Demand,
    cost: float,
    guardrails: Guardrails,
    box: _Interval,
    grid: _Grid,
    chosen: tuple[int, float],
    budget: int,
) -> tuple[str, ...]:
    """The guardrails that bind at the chosen price (rule in the module docstring)."""
    objective = guardrails.objective
    cents = chosen[0]
    free, _ = _optimum(demand, cost, objective, _Grid(box.free_lo, box.reach, None), budget)
    names = []
    if cents == int(grid.cents(0)):
        names += [n for n, c in box.lower if n != "cost" and c == box.lo and free < c]
    if cents == int(grid.cents(grid.size - 1)):
        names += [n for n, c in box.upper if c == box.hi and free > c]
    if guardrails.price_endings is not None:
        _, plain = _optimum(demand, cost, objective, _Grid(box.lo, box.hi, None), budget)
        if plain > chosen[1]:
            names.append("price_endings")
    return tuple(dict.fromkeys(names))


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
    `max_candidates` is the number of demand evaluations per search pass (module docstring).
    """
    cost = _number("cost", cost)
    current = _optional_number("current_price", current_price)
    g = _guardrails(guardrails)
    if max_candidates < MIN_CANDIDATES:
        raise ValueError(f"max_candidates must be at least {MIN_CANDIDATES}, got {max_candidates}")
    box = _interval(cost, g, current)
    grid = _grid(box, g.ending_cents)
    chosen = _optimum(demand, cost, g.objective, grid, max_candidates)
    price = chosen[0] / 100
    broken = violations(price, cost, g, current)
    if broken or not box.lo <= chosen[0] <= box.hi:
        raise GuardrailViolation(
            f"the optimiser chose {price:.2f}, which breaks {broken or 'the search range'}"
        )
    units = float(_units(demand, np.array([price]))[0])
    return PriceDecision(
        price=price,
        expected_units=units,
        expected_profit=(price - cost) * units,
        expected_revenue=price * units,
        elasticity=_elasticity(demand, price, elasticity),
        binding=_binding(demand, cost, g, box, grid, chosen, max_candidates),
        current_price=current,
        cost=cost,
        objective=g.objective,
    )
