"""`aisle price ITEM STORE --cost ...`: what the registered pricing model quotes for an item in a
store, from its online features, inside the guardrails given as options and the shop's price step
and preferred endings (AISLE_QUOTING__...) where the options set none; amounts print as money."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from aisle.cli.common import DataDir, console, fail
from core.settings import get_settings
from training.pricing.online import MATERIALIZE_HINT, NoOnlineFeatures, pricing_row

if TYPE_CHECKING:
    from training.pricing.quoting import Guardrails

# Guardrails' fields (and the optimiser's inputs) as the `aisle price` options that set them.
PRICE_OPTIONS = {
    "cost": "--cost",
    "floor": "--floor",
    "ceiling": "--ceiling",
    "max_change_pct": "--max-change-pct",
    "min_margin_pct": "--min-margin-pct",
    "price_step": "--step",
    "price_endings": "--ending",
    "objective": "--objective",
    "current_price": "--current-price",
}


class Alias(StrEnum):
    challenger = "challenger"
    champion = "champion"


class Objective(StrEnum):
    profit = "profit"
    revenue = "revenue"


def guardrails_from_options(
    floor: float | None = None,
    ceiling: float | None = None,
    max_change_pct: float | None = None,
    min_margin_pct: float | None = None,
    endings: list[float] | tuple[float, ...] | None = None,
    objective: Objective | str = Objective.profit,
    step: float | None = None,
) -> Guardrails:
    """The `aisle price` options as `Guardrails`: an option left out is no guardrail (the
    shop's step and endings then apply), no `--ending` allows every cent of the step. Raises
    `GuardrailError` (contradictory options) or pydantic's `ValidationError` (one option out of
    range), each naming the field."""
    from training.pricing.quoting import Guardrails

    given: dict[str, Any] = {}  # left unset, the shop's step and endings apply (house.py)
    if step is not None:
        given["price_step"] = step
    if endings:
        given["price_endings"] = tuple(endings)
    return Guardrails(
        floor=floor,
        ceiling=ceiling,
        max_change_pct=max_change_pct,
        min_margin_pct=min_margin_pct,
        objective=objective.value if isinstance(objective, Objective) else objective,
        **given,
    )


def _option_of(field: str) -> str:
    option = PRICE_OPTIONS.get(field)
    return f" (fix {option})" if option else ""


def _field_errors(exc: Exception) -> str:
    """A GuardrailError, BadFeatures, UnknownEntity or pydantic ValidationError as one line that
    names the field (and the option that sets it)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        parts = []
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"]) or "guardrails"
            name = str(error["loc"][0]) if error["loc"] else ""
            parts.append(f"{field}: {error['msg']}{_option_of(name)}")
        return "; ".join(parts)
    field = str(getattr(exc, "field", ""))
    message = str(exc)
    if field and field not in message:
        message = f"{field}: {message}"
    return message + _option_of(field)


def _check_quote_inputs(cost: float, guardrails: Guardrails, current_price: float | None) -> None:
    """Refuse a bad cost or contradictory guardrails before a model or feature is loaded. The
    max-change window needs the current price, which may come from the features: it is checked
    here only when --current-price is given (else by the quote itself)."""
    from training.pricing.quoting import feasible_interval

    if current_price is None and guardrails.max_change_pct is not None:
        guardrails = guardrails.model_copy(update={"max_change_pct": None})
    feasible_interval(cost, guardrails, current_price)


def price(
    item_id: Annotated[str, typer.Argument(help="The item to price.")],
    store_id: Annotated[str, typer.Argument(help="The store it is priced in.")],
    cost: Annotated[float, typer.Option(help="The item's unit cost (> 0).")],
    floor: Annotated[float | None, typer.Option(help="Lowest allowed price.")] = None,
    ceiling: Annotated[float | None, typer.Option(help="Highest allowed price.")] = None,
    max_change_pct: Annotated[
        float | None,
        typer.Option(help="Largest change from the current price, in percent (0, 100]."),
    ] = None,
    min_margin_pct: Annotated[
        float | None,
        typer.Option(help="Smallest margin, (price - cost) / price in percent [0, 100)."),
    ] = None,
    ending: Annotated[
        list[float] | None,
        typer.Option(
            help="An allowed price ending in cents, e.g. 0.99; repeat for more "
            "(--ending 0.99 --ending 0.49) [default: AISLE_QUOTING__PRICE_ENDINGS, any]."
        ),
    ] = None,
    step: Annotated[
        float | None,
        typer.Option(
            help="Quote a multiple of this, e.g. 0.05 [default: AISLE_QUOTING__PRICE_STEP, 0.01]."
        ),
    ] = None,
    objective: Annotated[
        Objective, typer.Option(help="What the price maximises.")
    ] = Objective.profit,
    current_price: Annotated[
        float | None,
        typer.Option(
            help="The price now, for --max-change-pct [default: the shelf price in the online "
            "features]."
        ),
    ] = None,
    alias: Annotated[Alias, typer.Option(help="Registry alias to ask.")] = Alias.challenger,
    as_json: Annotated[bool, typer.Option("--json", help="Print the quote as JSON.")] = False,
    data_dir: DataDir = None,
) -> None:
    """The price the registered pricing model quotes for an item in a store: the whole-cent
    price that maximises expected profit (or revenue) within the guardrails, from the item's
    online `pricing_v1` features."""
    from pydantic import ValidationError

    from training.pricing.quoting import GuardrailError, GuardrailViolation, house_guardrails

    settings = get_settings(data_dir=data_dir)
    try:  # before the slow imports: a typo in an option is answered at once
        guardrails = guardrails_from_options(
            floor, ceiling, max_change_pct, min_margin_pct, ending, objective, step
        )
        guardrails = house_guardrails(guardrails, settings.quoting)
        _check_quote_inputs(cost, guardrails, current_price)
    except (GuardrailError, ValidationError) as exc:
        raise fail(_field_errors(exc)) from None

    from features.online import FeaturesUnavailable
    from training.pricing.design import BadFeatures, UnknownEntity
    from training.pricing.registry import MODEL_NAME, load_pricing
    from training.tracking import point_at_store

    point_at_store(settings)
    uri = f"models:/{MODEL_NAME}@{alias.value}"
    try:
        model = load_pricing(uri)
    except Exception as exc:  # mlflow raises its own types for a missing model or alias
        raise fail(
            f"no {MODEL_NAME}@{alias.value} in {settings.tracking_uri}: {exc} (train one with "
            "`aisle train pricing --end YYYY-MM-DD`)"
        ) from None
    try:
        row = pricing_row(settings, item_id, store_id)
    except (NoOnlineFeatures, ValueError) as exc:
        raise fail(str(exc)) from None
    except FeaturesUnavailable as exc:
        raise fail(f"{exc}; {MATERIALIZE_HINT}") from None
    try:
        quote = model.quote(row, cost=cost, guardrails=guardrails, current_price=current_price)
    except UnknownEntity as exc:
        raise fail(f"{exc} (model {uri} was not trained on it)") from None
    except BadFeatures as exc:
        raise fail(
            f"{_field_errors(exc)} (online features of item_id {item_id!r} in store_id "
            f"{store_id!r})"
        ) from None
    except GuardrailError as exc:
        raise fail(_field_errors(exc)) from None
    except GuardrailViolation as exc:  # a bug in the optimiser: refuse, never publish
        raise fail(f"refused to quote: {exc}") from None
    except ValueError as exc:  # e.g. a demand curve the optimiser cannot use
        raise fail(f"could not quote item_id {item_id!r} in store_id {store_id!r}: {exc}") from None
    if as_json:
        typer.echo(json.dumps(quote.to_dict(), indent=2))
        return
    console.print(
        _quote_table(quote, uri, row["event_timestamp"].iloc[0], settings.quoting.currency)
    )


def _quote_table(quote: Any, uri: str, as_of: Any, currency: str = "$") -> Table:
    from training.pricing.quoting import money

    decision = quote.decision
    table = Table("", "value", title=f"{uri}: item {quote.item_id} in store {quote.store_id}")
    table.add_row("price", f"[bold]{money(decision.price, currency)}[/bold]")
    if decision.current_price is not None:
        change = (decision.price / decision.current_price - 1) * 100
        current = money(decision.current_price, currency)
        table.add_row("current price", f"{current} ({change:+.1f}%)")
    margin = (decision.price - decision.cost) / decision.price * 100
    table.add_row("cost", f"{money(decision.cost, currency)} (margin {margin:.1f}%)")
    table.add_row("expected units", f"{decision.expected_units:.1f}")
    table.add_row("expected profit", money(round(decision.expected_profit, 2), currency))
    table.add_row("expected revenue", money(round(decision.expected_revenue, 2), currency))
    if decision.elasticity is None or not math.isfinite(decision.elasticity):
        table.add_row("elasticity", "n/a (no demand at this price)")
    else:
        table.add_row("elasticity", f"{decision.elasticity:.2f} ± {quote.elasticity_std:.2f}")
    table.add_row("maximises", decision.objective)
    table.add_row("binding guardrails", ", ".join(decision.binding) or "none")
    for note in decision.notes:
        table.add_row("note", note)
    stamp = as_of.astimezone(UTC) if isinstance(as_of, datetime) else as_of
    table.add_row("features as of", str(stamp))
    return table
