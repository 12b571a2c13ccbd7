"""Attribution: what each recommendation earned. The answer log (features.stream.zones) joined
with the events that followed it, one row per answer:

    request_id, at, model, version, colour, arm, user_id, shown (items in the answer)
    clicked      a recommended item viewed within `click_window` after the answer
    carted       one added to the cart within `purchase_window`
    purchased    one bought within `purchase_window`
    revenue      price x quantity (1 when not given) of the recommended items bought

An event is credited to the answer it names (`request_id`, when that answer showed its item);
an event without one goes to the latest answer before it, inside the window, that showed the
user that item (last touch). An event credits at most one answer; an answer counts an item once
per kind of event. `summarise` gives the figures per model version, colour and arm.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

OUTCOME_COLUMNS = [
    "request_id", "at", "model", "version", "colour", "arm", "user_id", "shown",
    "clicked", "carted", "purchased", "revenue",
]  # fmt: skip
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
    answers = answers[answers["item_ids"].map(lambda items: items is not None)]
    answers = answers[answers["path"].isin(["/recommend", "/recommend_batch"])]
    out = answers.reindex(columns=[c for c in OUTCOME_COLUMNS if c in answers]).copy()
    out["at"] = pd.to_datetime(out["at"], utc=True)
    out["shown"] = answers["item_ids"].map(len).to_numpy()
    for kind in ("clicked", "carted", "purchased"):
        out[kind] = False
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
    flags = per_item.groupby(["request_id", "kind"]).size().unstack(fill_value=0) > 0
    bought = hits[hits["kind"] == "purchased"]
    revenue = (
        (bought["price"].fillna(0) * bought["quantity"].fillna(1))
        .groupby(bought["request_id"])
        .sum()
    )
    out = out.set_index("request_id")
    for kind in ("clicked", "carted", "purchased"):
        if kind in flags:
            out[kind] = flags[kind].reindex(out.index, fill_value=False).to_numpy()
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
    revenue per answer."""
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
        }
    ).reset_index()
