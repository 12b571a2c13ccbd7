"""The shop's house style (`AISLE_QUOTING__...`, core.settings.QuotingPolicy) applied to a quote:
the policy's price step and preferred endings fill whatever a request's guardrails leave out, and
amounts are written as a shopper reads them ($2.49).

A request that sets `price_endings` (null: any ending) or `price_step` itself keeps its own; one
that names its own endings keeps them as a rule (no fitting price is a
`GuardrailError`) unless it sets `endings_fallback` itself; endings that come from the policy
follow the policy's `endings_fallback` (default: a preference, quoted on the step with a note
where none fits, so that a tight max-change window still gets a price).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .guardrails import GuardrailError, Guardrails, checked_guardrails


def house_guardrails(guardrails: Guardrails | None, policy: Any) -> Guardrails:
    """`guardrails` (None: none) with the policy's step and endings where it sets neither.
    `policy` is a `core.settings.QuotingPolicy`; a step or ending there that the optimiser
    cannot use is a GuardrailError naming the AISLE_QUOTING__ setting to fix."""
    g = checked_guardrails(guardrails)
    given = g.model_fields_set
    update: dict[str, Any] = {}
    if "price_step" not in given and policy.price_step != 0.01:
        update["price_step"] = policy.price_step
    if "price_endings" not in given and policy.price_endings is not None:
        update["price_endings"] = tuple(policy.price_endings)
        if "endings_fallback" not in given:
            update["endings_fallback"] = policy.endings_fallback
    if not update:
        return g
    try:  # validated again: model_copy would not check the policy's values
        return Guardrails(**{**g.model_dump(exclude_unset=True), **update})
    except ValidationError as error:
        field = str(error.errors()[0]["loc"][0])
        raise GuardrailError(
            field, f"AISLE_QUOTING__{field.upper()}: {error.errors()[0]['msg']}"
        ) from None
    except GuardrailError as error:
        if error.field in update:
            raise GuardrailError(
                error.field, f"AISLE_QUOTING__{error.field.upper()}: {error.message}"
            ) from None
        raise


def money(amount: float | None, currency: str = "$") -> str:
    """An amount as a shopper reads it: $2.49, -$0.50; finer than a cent where it is (a
    per-ounce cost), so nothing is rounded away."""
    if amount is None:
        return "n/a"
    sign = "-" if amount < 0 else ""
    value = abs(amount)
    whole = abs(value * 100 - round(value * 100)) < 1e-9
    return f"{sign}{currency}{value:,.2f}" if whole else f"{sign}{currency}{value:.4g}"
