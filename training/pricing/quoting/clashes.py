"""The wording of impossible guardrails: when a lower bound lies above an upper bound, the
`GuardrailError` that names the field to fix and says why no price is allowed."""

from __future__ import annotations

from .guardrails import GuardrailError, Rule

# several clashes at once: report the most basic first (floor/ceiling, then cost, margin, change)
_CLASH_ORDER = {"floor": 0, "cost": 1, "min_margin_pct": 2, "max_change_pct": 3}


def clash_error(clashes: list[tuple[Rule, Rule]], current: float | None) -> GuardrailError:
    """The error for the most basic of `clashes`, each a (lower, upper) pair of rules that no
    whole-cent price satisfies together."""
    return _clash(*min(clashes, key=_clash_rank), current)


def _amount(value: float) -> str:
    """A bound for a message: cents, or up to four decimals where it is not a whole cent."""
    return f"{value:.2f}" if abs(value * 100 - round(value * 100)) < 1e-6 else f"{value:.4f}"


def _clash_field(lower: Rule, upper: Rule) -> str:
    if "max_change_pct" in (lower.name, upper.name):
        return "max_change_pct"
    return "min_margin_pct" if lower.name == "min_margin_pct" else "ceiling"


def _clash_rank(clash: tuple[Rule, Rule]) -> int:
    lower, upper = clash
    return 3 if upper.name == "max_change_pct" else _CLASH_ORDER[lower.name]


def _clash(lower: Rule, upper: Rule, current: float | None) -> GuardrailError:
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
