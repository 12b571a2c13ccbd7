"""The price step and the house style: quotes on a step (0.05, 5.00), endings honoured with every
other guardrail still held, the fallback to the step where no ending fits (and its note), and
the shop's AISLE_QUOTING__ policy filling what a request leaves out."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from core.settings import QuotingPolicy
from training.pricing.quoting import (
    GuardrailError,
    Guardrails,
    candidate_prices,
    house_guardrails,
    money,
    optimise_price,
    violations,
)

COST = 2.37  # with e = -2 the optimum is 2 x cost = 4.74: on no coarse step, on no .99 ending


def demand(p):
    return 100.0 * np.asarray(p, dtype=float) ** -2.0


def cents(price: float) -> int:
    return round(price * 100)


@pytest.mark.parametrize(("step", "expected"), [(0.05, 4.75), (0.25, 4.75), (1.0, 5.0), (5.0, 5.0)])
def test_quotes_are_multiples_of_the_step_and_the_step_binds(step, expected):
    got = optimise_price(demand, COST, Guardrails(price_step=step))
    # the profit curve is flat near 4.74: the best multiple is the nearest one on either side
    assert got.price == expected and cents(got.price) % cents(step) == 0
    assert got.binding == ("price_step",)
    assert optimise_price(demand, COST).price == 4.74  # the cent grid, for comparison


def test_endings_on_the_step_and_every_other_guardrail_held():
    rails = Guardrails(
        price_step=0.05, price_endings=(0.45, 0.95), floor=3.0, ceiling=6.0, max_change_pct=10
    )
    got = optimise_price(demand, COST, rails, current_price=4.2)  # window 3.78 .. 4.62
    assert got.price == 4.45  # the best .45/.95 price in the window; 4.62 is the window's top
    assert violations(got.price, COST, rails, 4.2) == []
    assert violations(4.5, COST, rails, 4.2) == ["price_endings"]
    assert violations(4.47, COST, rails, 4.2) == ["price_step", "price_endings"]


def test_no_ending_in_the_window_falls_back_to_the_step_with_a_note():
    rails = dict(floor=2.0, ceiling=2.4, price_endings=(0.45, 0.95))  # holds no .45 or .95
    with pytest.raises(GuardrailError) as refused:  # asked as a rule: refused, named
        optimise_price(demand, 1.0, Guardrails(**rails))
    assert refused.value.field == "price_endings" and ".45 or .95" in str(refused.value)
    got = optimise_price(demand, 1.0, Guardrails(**rails, endings_fallback=True, price_step=0.05))
    assert got.price == 2.0  # elastic above 2 x cost = 2.00: the floor, on the 0.05 step
    assert 2.0 <= got.price <= 2.4 and cents(got.price) % 5 == 0
    assert got.notes == (
        "no allowed price between 2.00 and 2.40 ends in .45 or .95: quoted on the 0.05 step "
        "instead",
    )
    assert "price_endings" not in got.binding
    # a window that does hold an ending keeps to it, without a note
    fits = optimise_price(demand, 1.0, Guardrails(floor=2.0, ceiling=2.6, price_endings=(0.49,),
                                                  endings_fallback=True))  # fmt: skip
    assert (fits.price, fits.notes) == (2.49, ())


@pytest.mark.parametrize(
    ("rails", "field", "words"),
    [
        (dict(price_step=0.05, price_endings=(0.99,)), "price_endings", "multiple of 0.05"),
        (dict(price_step=0.25, floor=2.01, ceiling=2.2), "price_step", "multiple of 0.25"),
        (
            dict(
                price_step=0.25,
                floor=2.01,
                ceiling=2.2,
                price_endings=(0.5,),
                endings_fallback=True,
            ),
            "price_step",
            "multiple of 0.25",
        ),
    ],
)
def test_a_step_no_price_can_keep_is_an_error_naming_the_field(rails, field, words):
    with pytest.raises(GuardrailError) as raised:
        optimise_price(demand, 1.0, Guardrails(**rails))
    assert raised.value.field == field and words in str(raised.value)


@pytest.mark.parametrize("step", [0.0, -0.05, 0.015, float("nan"), 1e300])
def test_a_step_that_is_not_whole_cents_is_refused_at_the_field(step):
    with pytest.raises(ValidationError) as raised:
        Guardrails(price_step=step)
    assert raised.value.errors()[0]["loc"][0] == "price_step"


def test_candidates_on_a_step_and_a_cycle_longer_than_a_dollar():
    assert candidate_prices(1.0, 1.3, None, step=0.1).tolist() == [1.0, 1.1, 1.2, 1.3]
    # .99 on a 3-cent step: 0.99 and 3.99 (a 3-dollar cycle), not 1.99 or 2.99
    assert candidate_prices(0.5, 5.0, (0.99,), step=0.03).tolist() == [0.99, 3.99]
    assert candidate_prices(4.0, 16.0, None, step=5.0).tolist() == [5.0, 10.0, 15.0]


def test_the_house_policy_fills_what_a_request_leaves_out():
    policy = QuotingPolicy(price_step=0.05, price_endings=(0.95, 0.45))
    filled = house_guardrails(Guardrails(floor=2.0), policy)
    assert (filled.floor, filled.price_step, filled.ending_cents) == (2.0, 0.05, (45, 95))
    assert filled.endings_fallback  # the house style is a preference
    own = house_guardrails(Guardrails(price_endings=(0.25,)), policy)
    assert (own.ending_cents, own.endings_fallback) == ((25,), False)  # the request's rule
    assert house_guardrails(None, QuotingPolicy()) == Guardrails()
    with pytest.raises(GuardrailError, match="AISLE_QUOTING__PRICE_ENDINGS"):
        house_guardrails(None, QuotingPolicy(price_step=0.1, price_endings=(0.99,)))


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (2.49, "$2.49"),
        (2.5, "$2.50"),
        (1234.5, "$1,234.50"),
        (-0.5, "-$0.50"),
        (0.0390625, "$0.03906"),
        (None, "n/a"),
    ],
)
def test_money_reads_as_a_shopper_expects(amount, text):
    assert money(amount) == text
