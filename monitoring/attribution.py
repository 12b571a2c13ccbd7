"""Attribution: what each answer earned. The answer log (features.stream.zones) joined with the
events that followed it.

Recommendations (`attribute_recommendations`), one row per answer:

    request_id, at, model, version, colour, experiment, arm, user_id, shown (items in the answer)
    clicked      a recommended item viewed within `click_window` after the answer
    carted       one added to the cart within `purchase_window`
    purchased    one bought within `purchase_window`
    clicks, carts, purchases   how many of the recommended items were viewed, carted, bought
                 (the experiments' metrics: a shopper's sum over the answers they were shown)
    revenue      price x quantity (1 when not given) of the recommended items bought; NaN when
                 one of them was bought without a price (the shop's events name none: its
                 revenue is unknown, not 0)

An event is credited to the answer it names (`request_id`, when that answer showed its item);
an event without one goes to the latest answer before it, inside the window, that showed the
user that item (last touch). An event credits at most one answer; an answer counts an item once
per kind of event. `summarise` gives the figures per model version, colour and arm.

Prices (`attribute_prices`), one row per quote (/price, and each element of /price_batch, whose
request id is <id>:<position>): the shop's till posts a shelf's sales as purchase events that
carry the quote's request_id, so a quote is credited exactly the purchases of its item that name
it within `window` after it (no last touch: an unnamed sale belongs to no quote):

    request_id, at, model, version, colour, experiment, arm, item_id, store_id, price (quoted)
    cost         the unit cost the request gave (the answer log's context), else NaN
    units        units sold (the purchases' quantity, 1 when not given)
    revenue      price paid x quantity (the quoted price when a sale names none)
    profit       revenue - cost x units: (price - cost) x units when the till charges the quote;
                 0 with no sale, NaN when a sale's cost is unknown

`summarise_prices` gives quotes, units, revenue and profit (and each per quote) per model version,
colour and arm.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

OUTCOME_COLUMNS = [
    "request_id", "at", "model", "version", "colour", "experiment", "arm", "user_id", "shown",
    "clicked", "carted", "purchased", "clicks", "carts", "purchases", "revenue",
]  # fmt: skip
PRICE_COLUMNS = [
    "request_id", "at", "model", "version", "colour", "experiment", "arm", "item_id",
    "store_id", "price", "cost", "units", "revenue", "profit",
]  # fmt: skip
RECOMMEND_PATHS = ("/recommend", "/recommend_batch")
PRICE_PATHS = ("/price", "/price_batch")
COUNTS = {"clicked": "clicks", "carted": "carts", "purchased": "purchases"}
KINDS = {"view": ("clicked", "click"), "add_to_cart": ("carted", "purchase"),
         "purchase": ("purchased", "purchase")}  # fmt: skip
GROUPS = ["model", "version", "colour", "arm"]


def attribute_recommendations(
    answers: pd.DataFrame,
    events: pd.DataFrame,
    click_window: timedelta = timedelta(minutes=30),
    purchase_window: timedelta = timedelta(days=1),
) -> pd.DataFrame:
    """One row per recommendation answer with what followed it (module docstring)."""
    answers = answers[answers["item_ids"].map(lambda items: items is not None).astype(bool)]
    answers = answers[answers["path"].isin(RECOMMEND_PATHS)]
    out = answers.reindex(columns=[c for c in OUTCOME_COLUMNS if c in answers]).copy()
    out["at"] = pd.to_datetime(out["at"], utc=True)
    out["shown"] = answers["item_ids"].map(len).to_numpy()
    for kind, count in COUNTS.items():
        out[kind] = False
        out[count] = 0
    out["revenue"] = 0.0
    if out.empty or events.empty:
        return out.reset_index(drop=True)

    shown = (
        answers[["request_id", "at", "user_id", "item_ids"]]
        .explode("item_ids")
        .rename(columns={"item_ids": "item_id"})
        .dropna(subset=["item_id"])
    )
    shown["at"] = pd.to_datetime(shown["at"], utc=True)
    events = events.copy()
    events["timestamp"] = pd.to_datetime(events["timestamp"], utc=True)
    windows = {"click": click_window, "purchase": purchase_window}
    credited = []
    for event_type, (kind, window) in KINDS.items():
        these = events[events["event_type"] == event_type]
        if not these.empty:
            credited.append(_credit(shown, these, windows[window]).assign(kind=kind))
    if not credited:
        return out.reset_index(drop=True)
    hits = pd.concat(credited, ignore_index=True)
    # an answer counts an item once per kind of event (a second view of it adds nothing)
    per_item = hits.drop_duplicates(["request_id", "item_id", "kind"])
    counts = per_item.groupby(["request_id", "kind"]).size().unstack(fill_value=0)
    bought = hits[hits["kind"] == "purchased"]
    paid = bought["price"] * bought["quantity"].fillna(1)
    revenue = paid.fillna(0.0).groupby(bought["request_id"]).sum()
    revenue[paid.isna().groupby(bought["request_id"]).any()] = np.nan
    out = out.set_index("request_id")
    for kind, count in COUNTS.items():
        if kind in counts:
            found = counts[kind].reindex(out.index, fill_value=0).to_numpy()
            out[count], out[kind] = found, found > 0
    out["revenue"] = revenue.reindex(out.index, fill_value=0.0).to_numpy()
    return out.reset_index()[[c for c in OUTCOME_COLUMNS if c in out.reset_index()]]


def _credit(shown: pd.DataFrame, events: pd.DataFrame, window: timedelta) -> pd.DataFrame:
    """Each event with the answer it is credited to (request_id), if any."""
    columns = ["user_id", "item_id", "timestamp", "price", "quantity"]
    events = events.reindex(columns=[*columns, "request_id"])
    named = events[events["request_id"].notna()].merge(
        shown[["request_id", "user_id", "item_id", "at"]],
        on=["request_id", "user_id", "item_id"],
    )
    named = named[
        (named["timestamp"] >= named["at"]) & (named["timestamp"] - named["at"] <= window)
    ]
    rest = events[events["request_id"].isna()].drop(columns="request_id")
    if rest.empty:
        last_touch = named.iloc[:0]
    else:
        last_touch = pd.merge_asof(
            rest.sort_values("timestamp"),
            shown.sort_values("at"),
            left_on="timestamp",
            right_on="at",
            by=["user_id", "item_id"],
            direction="backward",
            tolerance=pd.Timedelta(window),
        ).dropna(subset=["request_id"])
    found = pd.concat([named, last_touch], ignore_index=True)
    return found[["request_id", "item_id", "price", "quantity"]]


def summarise(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Per model, version, colour and arm: answers, click-through, cart and purchase rates,
    revenue and revenue per answer (over the answers whose revenue is known; revenue_unknown
    counts those that led to a purchase without a price)."""
    keys = [g for g in GROUPS if g in outcomes]
    frame = outcomes.assign(**{k: outcomes[k].fillna("") for k in keys})
    grouped = frame.groupby(keys, dropna=False)
    return pd.DataFrame(
        {
            "answers": grouped.size(),
            "click_through_rate": grouped["clicked"].mean(),
            "add_to_cart_rate": grouped["carted"].mean(),
            "purchase_rate": grouped["purchased"].mean(),
            "revenue_per_answer": grouped["revenue"].mean(),
            "revenue": grouped["revenue"].sum().astype(np.float64),
            "revenue_unknown": grouped["revenue"].agg(lambda r: int(r.isna().sum())),
        }
    ).reset_index()


def attribute_prices(
    answers: pd.DataFrame, events: pd.DataFrame, window: timedelta = timedelta(days=1)
) -> pd.DataFrame:
    """One row per price quote with the sales that named it (module docstring)."""
    quotes = answers[answers["path"].isin(PRICE_PATHS)]
    quotes = quotes[quotes["price"].notna()] if "price" in quotes else quotes.iloc[:0]
    out = quotes.reindex(columns=[c for c in PRICE_COLUMNS if c in quotes]).copy()
    out["at"] = pd.to_datetime(out["at"], utc=True)
    out["price"] = out["price"].astype(np.float64)
    context = quotes["context"] if "context" in quotes else pd.Series(None, index=quotes.index)
    out["cost"] = context.map(_cost).astype(np.float64).to_numpy()
    out["units"], out["revenue"] = 0, 0.0
    sales = _sales(out, events, window)
    if not sales.empty:
        units = sales.groupby("request_id")["quantity"].sum()
        revenue = sales.groupby("request_id")["paid"].sum()
        out["units"] = units.reindex(out["request_id"], fill_value=0).to_numpy()
        out["revenue"] = revenue.reindex(out["request_id"], fill_value=0.0).to_numpy()
    out["units"] = out["units"].astype(np.int64)
    # no sale earns nothing whatever the cost; a sale of unknown cost has unknown profit
    out["profit"] = np.where(out["units"] == 0, 0.0, out["revenue"] - out["cost"] * out["units"])
    return out.reset_index(drop=True)[[c for c in PRICE_COLUMNS if c in out]]


def _cost(context: Any) -> float:
    """The unit cost a price request gave, from the answer log's context (a JSON string)."""
    if isinstance(context, str):
        try:
            context = json.loads(context)
        except ValueError:
            return np.nan
    cost = context.get("cost") if isinstance(context, dict) else None
    return float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else np.nan


def _sales(quotes: pd.DataFrame, events: pd.DataFrame, window: timedelta) -> pd.DataFrame:
    """The purchase events that name a quote and its item, within `window` after it: request_id,
    quantity (1 when not given), paid (price x quantity; the quoted price when none given)."""
    if quotes.empty or events.empty or "request_id" not in events:
        return pd.DataFrame(columns=["request_id", "quantity", "paid"])
    bought = events[(events["event_type"] == "purchase") & events["request_id"].notna()]
    bought = bought.reindex(columns=["request_id", "item_id", "timestamp", "price", "quantity"])
    bought = bought.rename(columns={"price": "price_paid"})
    bought["timestamp"] = pd.to_datetime(bought["timestamp"], utc=True)
    found = bought.merge(
        quotes[["request_id", "item_id", "at", "price"]], on=["request_id", "item_id"]
    )
    found = found[
        (found["timestamp"] >= found["at"]) & (found["timestamp"] - found["at"] <= window)
    ]
    quantity = found["quantity"].fillna(1).astype(np.int64)
    paid = found["price_paid"].astype(np.float64).fillna(found["price"].astype(np.float64))
    return pd.DataFrame(
        {"request_id": found["request_id"], "quantity": quantity, "paid": paid * quantity}
    )


def summarise_prices(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Per model, version, colour and arm: quotes, units, revenue and profit, and each per quote
    (profit per quote over the quotes whose profit is known; profit_unknown counts the
    quotes that sold at an unknown cost)."""
    keys = [g for g in GROUPS if g in outcomes]
    frame = outcomes.assign(**{k: outcomes[k].fillna("") for k in keys})
    grouped = frame.groupby(keys, dropna=False)
    return pd.DataFrame(
        {
            "quotes": grouped.size(),
            "units": grouped["units"].sum().astype(np.int64),
            "revenue": grouped["revenue"].sum().astype(np.float64),
            "profit": grouped["profit"].sum().astype(np.float64),
            "units_per_quote": grouped["units"].mean(),
            "revenue_per_quote": grouped["revenue"].mean(),
            "profit_per_quote": grouped["profit"].mean(),
            "profit_unknown": grouped["profit"].agg(lambda p: int(p.isna().sum())),
        }
    ).reset_index()
