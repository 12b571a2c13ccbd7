"""The guardrails: what the business allows a price to be, the checks that say whether a price is
allowed, and the errors for bad inputs and broken rules.

The allowed set. A price is allowed when it is a whole number of cents and

* floor <= price <= ceiling (each when given);
* (price - cost) / price * 100 >= min_margin_pct, i.e. price >= cost / (1 - min_margin_pct/100);
* |price / current_price - 1| * 100 <= max_change_pct (which therefore needs current_price);
* it is a whole multiple of `price_step` (e.g. 0.05: 2.45, 2.50, ...), when given;
* its cents are one of `price_endings` (e.g. (0.99, 0.49): x.99 or x.49), when given. With
  `endings_fallback` the endings are a preference, not a rule: when no price with an allowed
  ending fits the other guardrails, the optimiser quotes on the step grid and says so in the
  decision's notes (a shelf gets an allowed price rather than none); without it that is a
  `GuardrailError` naming price_endings;
* under the profit objective, price >= cost: a price below cost loses on every unit sold, so a
  ceiling or max-change window entirely below cost is a `GuardrailError`, and `violations`
  reports such a price as breaking "cost". The revenue objective has no such rule.

Every check allows a slack of 1e-9 (relative; 1e-7 percentage points for the percentages), far
below a cent, so that e.g. a 10% change from 5.00 allows exactly 5.50 despite float rounding. The
candidate filter (interval.py) and `violations` use the very same checks (`rules`): the interval's
ends are the lowest and highest cent each check accepts, so a price the filter accepts always
passes validation.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SLACK = 1e-9  # relative slack on the floor, ceiling and cost checks
MAX_SLACK = 1e-4  # ... and never more than a hundredth of a cent
PCT_SLACK = 1e-7  # slack, in percentage points, on the margin and max-change checks

Objective = Literal["profit", "revenue"]


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
MAX_STEP = 1_000_000.0  # a step beyond any shelf price; larger ones would overflow the cent grid
_Step = Annotated[float, Field(gt=0, le=MAX_STEP, allow_inf_nan=False, strict=True)]


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
    price_step: _Step | None = None  # None: every cent
    price_endings: tuple[_Ending, ...] | None = None
    endings_fallback: bool = False
    objective: Objective = "profit"

    def __init__(self, **data: Any) -> None:
        # Cross-field checks raise GuardrailError, which pydantic would wrap if raised inside its
        # own validators; `feasible_interval` repeats them for models built another way.
        super().__init__(**data)
        if self.floor is not None and self.ceiling is not None and self.ceiling < self.floor:
            raise GuardrailError("ceiling", f"ceiling {self.ceiling} is below floor {self.floor}")
        _ = self.pattern  # endings that no multiple of the step has: GuardrailError, at once

    @field_validator("price_endings")
    @classmethod
    def _endings_are_cents(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if value is None:
            return None
        return tuple(cents / 100 for cents in ending_cents(value))

    @field_validator("price_step")
    @classmethod
    def _step_is_cents(cls, value: float | None) -> float | None:
        return None if value is None else step_cents(value) / 100

    @property
    def ending_cents(self) -> tuple[int, ...] | None:
        """The allowed endings as cents (0..99), sorted; None when every cent is allowed."""
        return None if self.price_endings is None else ending_cents(self.price_endings)

    @property
    def pattern(self) -> Pattern | None:
        """The allowed cents as a repeating pattern (step and endings together); None when
        every cent is allowed. GuardrailError naming price_endings when no ending is a multiple
        of the step."""
        return price_pattern(self.price_step, self.price_endings)

    @property
    def step_pattern(self) -> Pattern | None:
        """The pattern of the step alone: what `endings_fallback` quotes on."""
        return price_pattern(self.price_step, None)


# ---- inputs -----------------------------------------------------------------------------------
def positive_number(field: str, value: Any) -> float:
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


def optional_positive_number(field: str, value: Any) -> float | None:
    return None if value is None else positive_number(field, value)


def ending_cents(endings: Iterable[float]) -> tuple[int, ...]:
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


def step_cents(step: float) -> int:
    """A price step such as 0.05 as whole cents (>= 1); ValueError naming price_step."""
    cents = round(step * 100)
    if cents < 1 or abs(step * 100 - cents) > 1e-6:
        raise ValueError(f"price_step must be a whole number of cents (e.g. 0.05), got {step!r}")
    return cents


@dataclass(frozen=True)
class Pattern:
    """Allowed cents repeat every `period` cents: c is allowed when c % period is in
    `offsets` (sorted). A step of 5 cents is (5, (0,)); endings .49 and .99 are (100, (49, 99)).
    `step` and `endings` are what it was made from, for messages."""

    period: int
    offsets: tuple[int, ...]
    step: int = 1
    endings: tuple[int, ...] | None = None

    def allows(self, cents: int) -> bool:
        return cents % self.period in self.offsets

    def __str__(self) -> str:
        """As a pricing manager reads it: "ending in .49 or .99", "a multiple of 0.05"."""
        parts = []
        if self.endings is not None:
            parts.append("ending in " + " or ".join(f".{c:02d}" for c in self.endings))
        if self.step > 1:
            parts.append(f"a multiple of {self.step / 100:.2f}")
        return " and ".join(parts) or "a whole cent"


def price_pattern(step: float | None, endings: Iterable[float] | None) -> Pattern | None:
    """The allowed cents of a step (None: a cent) and endings (None: any); None when every
    cent is allowed. GuardrailError naming price_endings when no ending is on the step."""
    every = 1 if step is None else step_cents(step)
    ends = None if endings is None else ending_cents(endings)
    if ends is None:
        return None if every == 1 else Pattern(every, (0,), every)
    period = math.lcm(100, every)
    offsets = tuple(o for o in range(0, period, every) if o % 100 in ends)
    pattern = Pattern(period, offsets, every, ends)
    if not offsets:
        raise GuardrailError(
            "price_endings",
            f"price_endings: no price is {pattern}; choose endings on the price_step, or a "
            "finer step",
        )
    return pattern


def checked_guardrails(guardrails: Guardrails | None) -> Guardrails:
    """`guardrails`, or none at all (`Guardrails()`) for None; TypeError for anything else."""
    if guardrails is None:
        return Guardrails()
    if not isinstance(guardrails, Guardrails):
        raise TypeError(f"guardrails must be a Guardrails, got {type(guardrails).__name__}")
    return guardrails


# ---- checks -----------------------------------------------------------------------------------
def _slack(bound: float) -> float:
    return min(SLACK * max(1.0, abs(bound)), MAX_SLACK)


@dataclass(frozen=True)
class Rule:
    """One monotone check: a lower or upper bound on the price, and the exact test for it."""

    name: str  # the field it comes from ("cost" for the profit objective's price >= cost)
    side: Literal["lower", "upper"]
    value: float  # the bound in currency units (messages, and the first guess of its cent)
    ok: Callable[[float], bool]


def cost_rule(cost: float) -> Rule:
    """The profit objective's price >= cost, as a lower bound."""
    return Rule("cost", "lower", cost, lambda p: p >= cost - _slack(cost))


def rules(cost: float, guardrails: Guardrails, current: float | None) -> list[Rule]:
    """Every bound the guardrails (and, under the profit objective, the cost) put on the price;
    GuardrailError naming current_price when max_change_pct has nothing to change from."""
    g = guardrails
    found: list[Rule] = []
    if g.objective == "profit":
        found.append(cost_rule(cost))
    if g.floor is not None:
        floor = g.floor
        found.append(Rule("floor", "lower", floor, lambda p: p >= floor - _slack(floor)))
    if g.ceiling is not None:
        ceiling = g.ceiling
        found.append(Rule("ceiling", "upper", ceiling, lambda p: p <= ceiling + _slack(ceiling)))
    if g.min_margin_pct is not None:
        margin = g.min_margin_pct
        found.append(
            Rule(
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
        found.append(
            Rule(
                "max_change_pct",
                "lower",
                current * (1 - change / 100),
                lambda p: (p / current - 1) * 100 >= -change - PCT_SLACK,
            )
        )
        found.append(
            Rule(
                "max_change_pct",
                "upper",
                current * (1 + change / 100),
                lambda p: (p / current - 1) * 100 <= change + PCT_SLACK,
            )
        )
    return found


def violations(
    price: float, cost: float, guardrails: Guardrails, current_price: float | None
) -> list[str]:
    """The guardrails `price` breaks (empty when it is allowed): every decision is checked so.

    Names are guardrail fields ("floor", "ceiling", "min_margin_pct", "max_change_pct",
    "price_step", "price_endings"), plus "cost" for a price below cost under the profit
    objective. A price off its endings is reported even with `endings_fallback`: the optimiser
    checks a fallback quote against the guardrails without the endings.
    """
    price = positive_number("price", price)
    cost = positive_number("cost", cost)
    current = optional_positive_number("current_price", current_price)
    g = checked_guardrails(guardrails)
    broken = [r.name for r in rules(cost, g, current) if not r.ok(price)]
    cents = round(price * 100)
    whole = abs(price * 100 - cents) <= 1e-6
    step = g.step_pattern
    if step is not None and not (whole and step.allows(cents)):
        broken.append("price_step")
    endings = g.ending_cents
    if endings is not None and not (whole and cents % 100 in endings):
        broken.append("price_endings")
    return list(dict.fromkeys(broken))
